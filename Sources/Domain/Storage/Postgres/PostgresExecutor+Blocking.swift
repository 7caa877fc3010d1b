/// libpq's blocking calls on the executor's threads, never on the cooperative pool or an event
/// loop.
///
/// A call ignores task cancellation once started: a connect, close or statement always runs to
/// its end (statements are cancelled through PQcancel instead), so a connection is never left
/// mid-protocol.
extension PostgresExecutor {
    nonisolated(nonsending) func run<T: Sendable>(
        _ body: @escaping @Sendable () throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        try await run(startingWith: {}, then: body)
    }

    /// Runs `start` (which must not block) on the caller, then `body` with its outcome on one of
    /// the executor's threads.
    ///
    /// On one of them already (a task that prefers this executor), both run inline on it, after
    /// the thread's next-job slot is handed to the shared queue so nothing waits behind the
    /// blocking `body`. Elsewhere, `start` runs inside the continuation's closure, before the
    /// hand-off: whatever it sends is on the network while a thread wakes up for `body`, which
    /// then resumes the caller.
    nonisolated(nonsending) func run<Started: Sendable, T: Sendable>(
        startingWith start: () throws(PostgresError) -> Started,
        then body: @escaping @Sendable (Started) throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        if let thread = currentThread {
            thread.handOffNext()
            return try body(try start())
        }
        let result: Result<T, PostgresError> = await withCheckedContinuation { continuation in
            let started: Started
            switch Result(catching: { () throws(PostgresError) in try start() }) {
            case .success(let value): started = value
            case .failure(let error):
                continuation.resume(returning: .failure(error))
                return
            }
            let accepted = push(.call {
                continuation.resume(returning: Result { () throws(PostgresError) -> T in try body(started) })
            })
            if !accepted {
                continuation.resume(returning: .failure(PostgresError(.poolClosed, "database pool is shut down")))
            }
        }
        return try result.get()
    }

    /// Runs `body` on one of the threads, never inline, ahead of queued jobs (cancel requests:
    /// the caller may be the thread blocked in the statement's connection). Dropped after
    /// shutdown.
    func submitFirst(_ body: @escaping @Sendable () -> Void) {
        push(.call(body), first: true)
    }

    /// Runs `body` on one of the threads, never inline, so the caller goes on meanwhile (COPY
    /// encodes the next chunk while this one is sent); false after shutdown.
    func submit(_ body: @escaping @Sendable () -> Void) -> Bool {
        push(.call(body))
    }

    /// Lets the threads finish the queued work and exit; returns when the last has. Idempotent.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            shared.lock()
            guard shared.state.live > 0 else {
                shared.unlock()
                continuation.resume()
                return
            }
            shared.state.stopping = true
            shared.state.stopWaiters.append(continuation)
            shared.unlock()
            shared.broadcast()
        }
    }
}
