/// How presence behaves on one instance; the settings `PRESENCE_*` fill it.
public struct PresenceConfiguration: Sendable {
    /// A device without a heartbeat this long is OFFLINE (its stream is closed, and its state in
    /// Redis expires with this TTL when its instance is gone).
    public var timeout: Duration
    /// Each stream gets at most one message per interval (changes coalesced per user); the
    /// expiry sweep runs four times per interval.
    public var interval: Duration
    /// Presence streams open on this instance at once.
    public var maxStreams: Int
    /// Devices (live streams) of one user at once, over every instance.
    public var maxDevices: Int
    /// Users one `Subscribe` may name (the contract's 500).
    public var maxSubscriptions: Int
    /// Bytes of a status' activity text.
    public var maxActivityBytes: Int
    /// Users whose presence an instance keeps following after its last watcher left, so a
    /// reconnecting client's snapshot comes from memory (least recently used go first).
    public var lingeringUsers: Int
    /// Prefix of the Redis keys and channels.
    public var namespace: String

    /// 45 s timeout, 2 s interval, 50,000 streams, 5 devices per user, 500 users per subscription,
    /// 256-byte activity, 10,000 lingering users.
    public static var defaults: PresenceConfiguration {
        PresenceConfiguration(timeout: .seconds(45), interval: .seconds(2), maxStreams: 50_000, maxDevices: 5,
                              maxSubscriptions: 500, maxActivityBytes: 256, lingeringUsers: 10_000, namespace: "presence")
    }

    public init(timeout: Duration, interval: Duration, maxStreams: Int, maxDevices: Int, maxSubscriptions: Int,
                maxActivityBytes: Int, lingeringUsers: Int, namespace: String) {
        self.timeout = timeout
        self.interval = interval
        self.maxStreams = maxStreams
        self.maxDevices = maxDevices
        self.maxSubscriptions = maxSubscriptions
        self.maxActivityBytes = maxActivityBytes
        self.lingeringUsers = lingeringUsers
        self.namespace = namespace
    }

    /// How often the instance's one ticker looks for due outboxes: a change waits at most this
    /// much past its stream's interval.
    var tick: Duration { max(.milliseconds(5), min(.milliseconds(50), interval / 10)) }

    /// How often expired devices are swept: OFFLINE reaches subscribers within timeout plus one
    /// interval of a device's last heartbeat.
    var sweepEvery: Duration { max(.milliseconds(10), min(.milliseconds(250), interval / 4)) }
}
