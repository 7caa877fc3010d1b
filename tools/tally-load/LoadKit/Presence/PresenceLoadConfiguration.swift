import Units

public import Codec
public import GRPCClient

/// A presence load (`tally-load presence`): streams of `tally.v1.PresenceService/Connect`,
/// each its own user, watching others, changing status at a fixed total rate.
public struct PresenceLoadConfiguration: Sendable {
    public struct Target: Sendable, Hashable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// Servers; connection j goes to target (its first stream's user index) mod count, so with
    /// a connection per stream, stream i goes to target i mod count.
    public var targets: [Target]
    /// Streams this process opens, as users `firstUser ..< firstUser + streams`.
    public var streams: Int
    public var streamsPerConnection: Int
    /// Index of this process' first user (several processes share one population).
    public var firstUser: Int
    /// Users `user-0 ..< user-<users>` the subscriptions draw from (at least firstUser + streams).
    public var users: Int
    /// Other users each stream subscribes to (random, distinct): each user has this many
    /// subscribers on average.
    public var subscriptions: Int
    /// Status changes per second over all streams of this process, sent once every stream is
    /// open, for `duration`.
    public var changesPerSecond: Double
    public var heartbeat: Duration
    /// The measured phase: changes are sent for this long.
    public var duration: Duration
    /// Streams open evenly spread over this time.
    public var rampUp: Duration
    /// The server's PRESENCE_INTERVAL_MS: the bar is p99 <= interval + 100 ms, and the lost-
    /// change check waits two intervals (and a half second) after the last change.
    public var interval: Duration
    public var threads: Int
    public var connectTimeout: Duration
    public var tls: GRPCClientConfiguration.TLS?
    public var metadata: Metadata
    public var seed: UInt64

    public init(
        targets: [Target], streams: Int, streamsPerConnection: Int = 1, firstUser: Int = 0, users: Int? = nil,
        subscriptions: Int = 10, changesPerSecond: Double = 0, heartbeat: Duration = .seconds(10),
        duration: Duration = .seconds(30), rampUp: Duration = .zero, interval: Duration = .seconds(2), threads: Int = 1,
        connectTimeout: Duration = .seconds(5), tls: GRPCClientConfiguration.TLS? = nil, metadata: Metadata = Metadata(),
        seed: UInt64 = 0x7A11_7A11
    ) {
        self.targets = targets
        self.streams = streams
        self.streamsPerConnection = streamsPerConnection
        self.firstUser = firstUser
        self.users = max(users ?? 0, firstUser + streams)
        self.subscriptions = subscriptions
        self.changesPerSecond = changesPerSecond
        self.heartbeat = heartbeat
        self.duration = duration
        self.rampUp = rampUp
        self.interval = interval
        self.threads = threads
        self.connectTimeout = connectTimeout
        self.tls = tls
        self.metadata = metadata
        self.seed = seed
    }

    /// Connections this process opens.
    public var connections: Int { (streams + streamsPerConnection - 1) / streamsPerConnection }

    /// How long after the last change the lost-change check looks.
    public var settle: Duration { interval * 2 + .milliseconds(500) }

    /// The delivery bar: p99 at most one interval (the coalescing wait) plus 100 ms.
    public var bar: Duration { interval + .milliseconds(100) }
}
