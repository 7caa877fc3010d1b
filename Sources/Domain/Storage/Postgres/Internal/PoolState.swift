internal import NIOCore

/// The pool's bookkeeping as an I/O-free state machine: every mutation returns what the caller
/// must do (use a connection, open one, wait, resume a waiter) and does it outside the lock.
///
/// Slots: `idle + inUse + connecting + closing` never exceeds `max`. A slot freed while callers
/// wait is handed to the first waiter as `.slot` (it then opens the connection itself), so no
/// background task is needed to serve the queue.
struct PoolState {
    enum Grant: Sendable {
        case connection(ConnectionHandle)
        case slot
    }

    struct Waiter {
        var continuation: CheckedContinuation<Grant, any Error>
        var timer: Scheduled<Void>?
    }

    /// Why a waiter stopped waiting before it was enqueued (the timer or cancellation won).
    enum Abandon {
        case timedOut, cancelled
    }

    let max: Int
    let min: Int
    var idle: [ConnectionHandle] = []  // a stack: the most recently used is reused first
    var inUse = 0
    var connecting = 0
    var closing = 0
    var waiters: [Int: Waiter] = [:]
    var waitOrder = CircularBuffer<Int>()
    /// Waiter ids handed out but not yet enqueued, with the reason if they were abandoned.
    var announced: [Int: Abandon?] = [:]
    var nextWaiterID = 0
    var isClosed = false
    var drainWaiters: [CheckedContinuation<Void, Never>] = []
    var nextConnectionID = 0

    // Cumulative counters.
    var waits = 0
    /// Time waiters spent queued, summed when each got its connection or gave up.
    var waitTime = Duration.zero
    var timeouts = 0
    var created = 0
    var closed = 0

    init(min: Int, max: Int) {
        self.min = min
        self.max = max
    }

    var total: Int { idle.count + inUse + connecting + closing }

    enum AcquireAction {
        case use(ConnectionHandle)
        case connect
        case wait(Int)
        case fail(PostgresError)
    }

    /// First attempt: an idle connection, else a free slot, else a waiter id to wait with.
    mutating func acquire() -> AcquireAction {
        if isClosed { return .fail(PostgresError(.poolClosed, "database pool is shut down")) }
        if let handle = idle.popLast() {
            inUse += 1
            return .use(handle)
        }
        if total < max {
            connecting += 1
            return .connect
        }
        let id = nextWaiterID
        nextWaiterID += 1
        announced[id] = .some(nil)
        return .wait(id)
    }

    enum EnqueueAction {
        case enqueued
        case resume(Result<Grant, any Error>)
    }

    /// Second attempt, with the continuation: resources freed since `acquire` are taken now.
    mutating func enqueue(_ id: Int, _ continuation: CheckedContinuation<Grant, any Error>, timer: Scheduled<Void>?,
                          timeoutError: PostgresError) -> EnqueueAction {
        let abandoned = announced.removeValue(forKey: id) ?? nil
        switch abandoned {
        case .cancelled?: return .resume(.failure(CancellationError()))
        case .timedOut?:
            timeouts += 1
            return .resume(.failure(timeoutError))
        case nil: break
        }
        if isClosed { return .resume(.failure(PostgresError(.poolClosed, "database pool is shut down"))) }
        if let handle = idle.popLast() {
            inUse += 1
            return .resume(.success(.connection(handle)))
        }
        if total < max {
            connecting += 1
            return .resume(.success(.slot))
        }
        waits += 1
        waiters[id] = Waiter(continuation: continuation, timer: timer)
        waitOrder.append(id)
        return .enqueued
    }

    /// The timer or cancellation ended a wait: the waiter to resume with an error, if still waiting.
    mutating func abandon(_ id: Int, _ reason: Abandon) -> Waiter? {
        if let waiter = waiters.removeValue(forKey: id) {
            if reason == .timedOut { timeouts += 1 }
            return waiter
        }
        if announced[id] != nil { announced[id] = .some(reason) }
        return nil
    }

    private mutating func popWaiter() -> Waiter? {
        while let id = waitOrder.popFirst() {
            if let waiter = waiters.removeValue(forKey: id) { return waiter }
        }
        return nil
    }

    /// A leased connection comes back healthy: to the first waiter, else to the idle stack.
    mutating func release(_ handle: ConnectionHandle, now: ContinuousClock.Instant) -> Waiter? {
        handle.idleSince = now
        if let waiter = popWaiter() { return waiter }  // stays in use, by the waiter now
        inUse -= 1
        idle.append(handle)
        return nil
    }

    /// A leased connection is to be closed: its slot stays taken until `closeFinished`.
    mutating func discard() {
        inUse -= 1
        closing += 1
    }

    /// A close ended: the slot goes to the first waiter, if any.
    mutating func closeFinished() -> Waiter? {
        closing -= 1
        closed += 1
        return slotFreed()
    }

    /// A connect succeeded for a caller.
    mutating func connected() {
        connecting -= 1
        inUse += 1
        created += 1
    }

    /// A connect failed: the slot goes to the first waiter, if any.
    mutating func connectFailed() -> Waiter? {
        connecting -= 1
        return slotFreed()
    }

    /// A connection opened by maintenance: to the first waiter, else idle.
    mutating func prefilled(_ handle: ConnectionHandle, now: ContinuousClock.Instant) -> Waiter? {
        connecting -= 1
        created += 1
        inUse += 1
        return release(handle, now: now)
    }

    private mutating func slotFreed() -> Waiter? {
        guard !isClosed, let waiter = popWaiter() else { return nil }
        connecting += 1
        return waiter
    }

    /// Maintenance: idle connections past the idle timeout above `min` (marked closing), and how
    /// many connections to open to reach `min` (marked connecting).
    mutating func maintenance(now: ContinuousClock.Instant, idleTimeout: Duration) -> (expired: [ConnectionHandle], open: Int) {
        guard !isClosed else { return ([], 0) }
        var expired: [ConnectionHandle] = []
        // The stack's bottom has idled longest.
        while idle.count + inUse + connecting > min, let oldest = idle.first, now - oldest.idleSince >= idleTimeout {
            idle.removeFirst()
            expired.append(oldest)
            closing += 1
        }
        let open = Swift.max(0, min - (idle.count + inUse + connecting))
        connecting += open
        return (expired, open)
    }

    /// Shutdown: everything idle to close and every waiter to fail.
    mutating func close() -> (idle: [ConnectionHandle], waiters: [Waiter]) {
        isClosed = true
        let handles = idle
        idle.removeAll()
        closing += handles.count
        let waiting = Array(waiters.values)
        waiters.removeAll()
        waitOrder.removeAll()
        return (handles, waiting)
    }

    var isDrained: Bool { isClosed && total == 0 }

    var statistics: PostgresPoolStatistics {
        PostgresPoolStatistics(
            total: total, idle: idle.count, inUse: inUse, connecting: connecting + closing, waiting: waiters.count,
            max: max, waits: waits, timeouts: timeouts, created: created, closed: closed, waitTime: waitTime)
    }
}
