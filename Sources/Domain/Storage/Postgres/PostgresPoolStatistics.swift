/// A snapshot of a pool: gauges (now) and counters (since the pool started).
public struct PostgresPoolStatistics: Sendable, Hashable, CustomStringConvertible {
    /// Connections open or being opened or closed: `idle + inUse + connecting`.
    public var total: Int
    /// Open and free.
    public var idle: Int
    /// Leased to a caller.
    public var inUse: Int
    /// Being opened or closed (they hold a slot).
    public var connecting: Int
    /// Callers queued for a connection.
    public var waiting: Int
    /// The pool's maximum.
    public var max: Int
    /// Callers that had to queue.
    public var waits: Int
    /// Callers that gave up after the wait timeout.
    public var timeouts: Int
    /// Connections opened.
    public var created: Int
    /// Connections closed (idle timeout, max uses, broken, shutdown).
    public var closed: Int
    /// Time callers spent queued for a connection, all together (with `waits`, the mean wait).
    public var waitTime: Duration = .zero

    public init(
        total: Int, idle: Int, inUse: Int, connecting: Int, waiting: Int, max: Int, waits: Int, timeouts: Int, created: Int,
        closed: Int, waitTime: Duration = .zero
    ) {
        self.total = total
        self.idle = idle
        self.inUse = inUse
        self.connecting = connecting
        self.waiting = waiting
        self.max = max
        self.waits = waits
        self.timeouts = timeouts
        self.created = created
        self.closed = closed
        self.waitTime = waitTime
    }

    public var description: String {
        "total=\(total) idle=\(idle) inUse=\(inUse) connecting=\(connecting) waiting=\(waiting) max=\(max) "
            + "waits=\(waits) timeouts=\(timeouts) created=\(created) closed=\(closed) waitTime=\(waitTime)"
    }
}
