internal import NIOPosix

/// Runs libpq's blocking calls on a dedicated `NIOThreadPool`, never on the cooperative pool
/// or an event loop.
///
/// Unlike `NIOThreadPool.runIfActive` it ignores task cancellation: a started connect, close or
/// statement always runs to its end (statements are cancelled through PQcancel instead), so a
/// connection is never left mid-protocol.
struct BlockingExecutor: Sendable {
    let threadPool: NIOThreadPool

    init(threads: Int) {
        threadPool = NIOThreadPool(numberOfThreads: threads)
        threadPool.start()
    }

    nonisolated(nonsending) func run<T: Sendable>(
        _ body: @escaping @Sendable () throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        try await run(startingWith: {}, then: body)
    }

    /// Runs `start` (which must not block) on the caller, then `body` with its outcome on a
    /// blocking thread, and resumes the caller from that thread.
    ///
    /// `start` runs inside the continuation's closure, before the hand-off: whatever it sends is
    /// on the network while the blocking thread wakes up.
    nonisolated(nonsending) func run<Started: Sendable, T: Sendable>(
        startingWith start: () throws(PostgresError) -> Started,
        then body: @escaping @Sendable (Started) throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        let result: Result<T, PostgresError> = await withCheckedContinuation { continuation in
            let started: Started
            switch Result(catching: { () throws(PostgresError) in try start() }) {
            case .success(let value): started = value
            case .failure(let error):
                continuation.resume(returning: .failure(error))
                return
            }
            threadPool.submit { state in
                guard case .active = state else {
                    continuation.resume(returning: .failure(PostgresError(.poolClosed, "database pool is shut down")))
                    return
                }
                continuation.resume(returning: Result { () throws(PostgresError) -> T in try body(started) })
            }
        }
        return try result.get()
    }

    /// Fire and forget (cancel requests).
    func submit(_ body: @escaping @Sendable () -> Void) {
        threadPool.submit { state in
            if case .active = state { body() }
        }
    }

    func shutdown() async {
        try? await threadPool.shutdownGracefully()
    }
}
