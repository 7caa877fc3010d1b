public import Codec
public import GRPCClient

/// Everything a load run needs, validated by the command line (or a test) before the run.
public struct LoadConfiguration: Sendable {
    /// When the measured phase ends.
    public enum Stop: Sendable, Hashable {
        /// After this many measured calls (streams count as one call each).
        case requests(Int)
        /// After this long; calls in flight then still finish and count.
        case duration(Duration)
    }

    public var host: String
    public var port: Int
    public var tls: GRPCClientConfiguration.TLS?
    public var connectTimeout: Duration
    public var workloads: [Workload]
    public var stop: Stop
    /// Calls in flight at once, over all connections (closed loop: each worker starts its
    /// next call when the previous one ends; open loop: the most calls that may wait).
    public var concurrency: Int
    public var connections: Int
    /// Event loop threads driving the connections.
    public var threads: Int
    /// Open loop: calls per second over all connections, started on a fixed schedule and
    /// timed from when they were due, not when they went out (no coordinated omission).
    public var rate: Double?
    /// Load before the measured phase that is not recorded.
    public var warmup: Duration
    /// Closed loop: workers start evenly spread over this time; open loop: the rate rises
    /// linearly from 0 over it. Calls during the ramp are measured.
    public var rampUp: Duration
    public var users: Int
    public var batchSize: Int
    /// Client and bidi streams: messages sent per stream. Server streams: responses read
    /// before tally-load ends the stream itself (nil: until the server ends it).
    public var streamMessages: Int?
    /// Pause between a stream's messages.
    public var streamInterval: Duration?
    public var metadata: Metadata
    /// Unary calls: the share (0..<1) that send an earlier call's request again, byte for
    /// byte, as a client retry does (same idempotency key), drawn from the latest requests
    /// sent fresh, so many go out while the original is still in flight.
    public var retryShare: Double
    /// Unary responses: the top-level bool or integer field counted where it is set
    /// (`replayed` of the idempotent RPCs); ignored by RPCs whose response lacks it.
    public var countedField: String?
    /// Per-call deadline, sent as `grpc-timeout`.
    public var timeout: Duration?
    public var seed: UInt64

    public init(
        host: String, port: Int, workloads: [Workload], stop: Stop = .requests(200), concurrency: Int = 50,
        connections: Int = 1, threads: Int = 1, rate: Double? = nil, warmup: Duration = .zero, rampUp: Duration = .zero,
        users: Int = 10_000, batchSize: Int = 10, streamMessages: Int? = nil, streamInterval: Duration? = nil,
        metadata: Metadata = Metadata(), retryShare: Double = 0, countedField: String? = "replayed", timeout: Duration? = nil, tls: GRPCClientConfiguration.TLS? = nil,
        connectTimeout: Duration = .seconds(5), seed: UInt64 = 0x7A11_7A11
    ) {
        self.host = host
        self.port = port
        self.workloads = workloads
        self.stop = stop
        self.concurrency = concurrency
        self.connections = connections
        self.threads = threads
        self.rate = rate
        self.warmup = warmup
        self.rampUp = rampUp
        self.users = users
        self.batchSize = batchSize
        self.streamMessages = streamMessages
        self.streamInterval = streamInterval
        self.metadata = metadata
        self.retryShare = retryShare
        self.countedField = countedField
        self.timeout = timeout
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.seed = seed
    }

    /// Client streams send this many messages when `streamMessages` is not set.
    public static let defaultStreamMessages = 10
}
