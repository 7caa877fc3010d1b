import Units
public import Logging
public import NIOCore
internal import NIOPosix
import Synchronization

/// A pool of PostgreSQL connections on libpq: min/max connections, a wait queue with a
/// timeout, idle timeout, max uses per connection, per-call statement timeouts, and
/// replacement of broken connections, with live `statistics`.
///
/// Threading: libpq's calls block, so every one (connect, statement, COPY, pipeline, close,
/// cancel) runs on the pool's own threads, `taskExecutor`: `maxConnections + 2` of them (one
/// per possible connection plus spares for cancel requests and for the jobs of tasks that
/// prefer the executor), never on the cooperative pool or an event loop. A task that prefers
/// `taskExecutor` runs its calls inline on the thread it is on (send, then the blocking
/// receive, no thread hand-off: DB-bound work such as a job's transaction belongs there);
/// any other task sends a statement itself without blocking, then one of the threads receives
/// the reply and resumes it. A connection is leased to one task at a time, so each `PGconn` is
/// used by one thread at a time. Pool bookkeeping is a `Mutex`-guarded state machine
/// (`PoolState`); waiters' timeouts are timers on an event loop of `eventLoopGroup`, and nothing
/// else runs there.
///
/// Healing: a connection that reports an error with libpq status BAD, or that the server wrote
/// to or closed while it was idle (pg_terminate_backend, a restart), is closed and its slot
/// reused, so the pool recovers from a Postgres restart without restarting the process.
///
/// Lifecycle: call `shutdown()` when done (it waits for leased connections to come back), or run
/// the pool as a `Service`, which also keeps `minConnections` open and closes idle ones.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    /// The pool's threads as a `TaskExecutor`: tasks that prefer it run their statements inline
    /// (see Threading above), e.g. `withTaskExecutorPreference(pool.taskExecutor) { ... }`.
    public let taskExecutor: PostgresExecutor
    let state: Mutex<PoolState>
    let timerLoop: any EventLoop
    let logger: Logger

    /// - Parameter eventLoopGroup: where wait-queue timers run (NIO's shared group by default).
    public init(
        configuration: PostgresConfiguration,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "tally.postgres")
    ) {
        precondition(configuration.maxConnections >= 1, "maxConnections must be at least 1")
        precondition(configuration.minConnections <= configuration.maxConnections, "minConnections must not exceed maxConnections")
        self.configuration = configuration
        self.taskExecutor = PostgresExecutor(threads: configuration.maxConnections + 2, name: "tally.postgres")
        self.state = Mutex(PoolState(min: configuration.minConnections, max: configuration.maxConnections))
        self.timerLoop = (eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton).any()
        self.logger = logger
    }

    /// Gauges and counters now.
    public var statistics: PostgresPoolStatistics { state.withLock { $0.statistics } }

    /// Leases a connection for `body` and takes it back afterwards (closing it instead when it
    /// broke, reached its max uses, or was left inside a transaction).
    ///
    /// - Parameter deadline: bounds the wait for a connection and becomes the statement
    ///   timeout of every statement `body` runs (the RPC's deadline, typically).
    public func withConnection<T>(
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let handle = try await lease(deadline: deadline)
        let connection = PostgresConnection(handle: handle, pool: self, deadline: deadline)
        let result: T
        do {
            result = try await body(connection)
        } catch {
            await giveBack(handle)
            throw error
        }
        await giveBack(handle)
        return result
    }

    /// `withConnection` + `PostgresConnection.withTransaction`: BEGIN, `body`, COMMIT, or
    /// ROLLBACK when `body` throws.
    public func withTransaction<T>(
        deadline: ContinuousClock.Instant? = nil,
        isolation level: PostgresConnection.IsolationLevel = .readCommitted,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection(deadline: deadline) { connection in
            try await connection.withTransaction(isolation: level, body)
        }
    }

    /// One statement on a pooled connection.
    public func query(
        _ sql: String, _ parameters: [any PostgresEncodable] = [], deadline: ContinuousClock.Instant? = nil
    ) async throws -> PostgresRows {
        try await withConnection(deadline: deadline) { try await $0.query(sql, parameters) }
    }

    // MARK: leasing

    func lease(deadline: ContinuousClock.Instant?) async throws -> ConnectionHandle {
        while true {
            switch state.withLock({ $0.acquire() }) {
            case .use(let handle):
                if isFresh(handle) {
                    handle.uses += 1
                    return handle
                }
                await close(handle, leased: true)
            case .connect:
                return try await open()
            case .wait(let id):
                let queuedAt = ContinuousClock.now
                let grant: PoolState.Grant
                do {
                    grant = try await wait(id, deadline: deadline)
                    state.withLock { $0.waitTime += ContinuousClock.now - queuedAt }
                } catch {
                    state.withLock { $0.waitTime += ContinuousClock.now - queuedAt }
                    throw error
                }
                switch grant {
                case .connection(let handle):
                    if isFresh(handle) {
                        handle.uses += 1
                        return handle
                    }
                    await close(handle, leased: true)
                case .slot:
                    return try await open()
                }
            case .fail(let error):
                throw error
            }
        }
    }

    /// Not broken, not idle past the idle timeout, and untouched by the server while idle.
    private func isFresh(_ handle: ConnectionHandle) -> Bool {
        if ContinuousClock.now - handle.idleSince >= configuration.idleTimeout { return false }
        return handle.isUsableAfterIdle()
    }

    /// Opens a connection in a slot already reserved for it (`connecting`).
    private func open() async throws(PostgresError) -> ConnectionHandle {
        let config = configuration
        let id = state.withLock { state in
            state.nextConnectionID += 1
            return state.nextConnectionID
        }
        do {
            let handle = try await taskExecutor.run { () throws(PostgresError) in try ConnectionHandle.connect(config, id: id) }
            state.withLock { $0.connected() }
            handle.uses = 1
            return handle
        } catch {
            logger.warning("database connection failed", metadata: ["error": "\(error)", "server": "\(config.host):\(config.port)"])
            let waiter = state.withLock { $0.connectFailed() }
            resume(waiter, with: .success(.slot))
            signalIfDrained()
            throw error
        }
    }

    private func wait(_ id: Int, deadline: ContinuousClock.Instant?) async throws -> PoolState.Grant {
        var timeout = configuration.waitTimeout
        var timeoutError = PostgresError(
            .poolTimeout,
            "database connection pool exhausted: no connection became free within \(Self.describe(timeout)) "
                + "(all \(configuration.maxConnections) in use; DB_POOL_MAX)")
        if let deadline, deadline - .now < timeout {
            timeout = Swift.max(.zero, deadline - .now)
            timeoutError = PostgresError(.statementTimeout, "deadline passed while waiting for a database connection")
        }
        let error = timeoutError
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PoolState.Grant, any Error>) in
                let timer = timerLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
                    let waiter = state.withLock { $0.abandon(id, .timedOut) }
                    waiter?.continuation.resume(throwing: error)
                }
                let action = state.withLock { $0.enqueue(id, continuation, timer: timer, timeoutError: error) }
                if case .resume(let result) = action {
                    timer.cancel()
                    continuation.resume(with: result)
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.abandon(id, .cancelled) }
            waiter?.timer?.cancel()
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func resume(_ waiter: PoolState.Waiter?, with grant: Result<PoolState.Grant, any Error>) {
        guard let waiter else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(with: grant)
    }

    /// Takes a leased connection back: reused if healthy, else closed and its slot freed.
    func giveBack(_ handle: ConnectionHandle) async {
        let reusable = handle.isOK && handle.isIdleInServer
            && (configuration.maxUsesPerConnection.map { handle.uses < $0 } ?? true)
        if reusable {
            let now = ContinuousClock.now
            let outcome: (waiter: PoolState.Waiter?, closed: Bool) = state.withLock { state in
                if state.isClosed { return (nil, true) }
                return (state.release(handle, now: now), false)
            }
            if !outcome.closed {
                resume(outcome.waiter, with: .success(.connection(handle)))
                return
            }
        }
        await close(handle, leased: true)
    }

    /// Closes a connection that holds a slot (leased, or already marked closing).
    private func close(_ handle: ConnectionHandle, leased: Bool) async {
        if leased { state.withLock { $0.discard() } }
        if handle.broken {
            logger.debug("discarding broken database connection", metadata: ["connection": "\(handle.id)"])
        }
        try? await taskExecutor.run { handle.close() }
        let waiter = state.withLock { $0.closeFinished() }
        resume(waiter, with: .success(.slot))
        signalIfDrained()
    }

    /// Resumes `shutdown()` once the last slot is free.
    private func signalIfDrained() {
        let drained = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.isDrained else { return [] }
            defer { state.drainWaiters.removeAll() }
            return state.drainWaiters
        }
        for continuation in drained { continuation.resume() }
    }

    // MARK: maintenance and shutdown

    /// One maintenance pass: closes connections idle past the idle timeout (down to
    /// `minConnections`) and opens connections up to `minConnections`. `run()` calls it every
    /// `maintenanceInterval`.
    public func maintain() async {
        let now = ContinuousClock.now
        let (expired, open) = state.withLock { $0.maintenance(now: now, idleTimeout: configuration.idleTimeout) }
        for handle in expired { await close(handle, leased: false) }
        let config = configuration
        for index in 0..<open {
            let id = state.withLock { state in
                state.nextConnectionID += 1
                return state.nextConnectionID
            }
            do {
                let handle = try await taskExecutor.run { () throws(PostgresError) in try ConnectionHandle.connect(config, id: id) }
                let (waiter, closed) = state.withLock { state -> (PoolState.Waiter?, Bool) in
                    if state.isClosed {
                        state.connecting -= 1
                        state.closing += 1
                        return (nil, true)
                    }
                    return (state.prefilled(handle, now: .now), false)
                }
                if closed {
                    await close(handle, leased: false)
                } else if let waiter {
                    resume(waiter, with: .success(.connection(handle)))
                }
            } catch {
                logger.warning("database connection failed", metadata: ["error": "\(error)"])
                for _ in index..<open {
                    let waiter = state.withLock { $0.connectFailed() }
                    resume(waiter, with: .success(.slot))
                }
                return
            }
        }
    }

    /// Fails waiters, closes idle connections, waits for leased ones to come back and close,
    /// then stops the threads. Idempotent.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { $0.close() }
        for waiter in waiters {
            resume(waiter, with: .failure(PostgresError(.poolClosed, "database pool is shutting down")))
        }
        for handle in idle { await close(handle, leased: false) }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let drained = state.withLock { state in
                if state.isDrained { return true }
                state.drainWaiters.append(continuation)
                return false
            }
            if drained { continuation.resume() }
        }
        await taskExecutor.shutdown()
    }

    static func describe(_ duration: Duration) -> String {
        let millis = duration.milliseconds
        return millis % 1000 == 0 ? "\(millis / 1000) s" : "\(millis) ms"
    }
}
