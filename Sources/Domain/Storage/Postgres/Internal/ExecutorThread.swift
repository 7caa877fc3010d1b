#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// What one of a `PostgresExecutor`'s threads knows about itself: which executor it serves,
/// and the job to run next on it (the "next job" slot).
///
/// A job enqueued by the thread itself while it runs another (the task a `giveBack` hands a
/// connection to, a child task, a resumed continuation) waits in `next` rather than in the
/// shared queue, so it runs right after the current job without waking another thread. Before
/// the thread blocks in libpq it hands `next` over to the shared queue (`handOffNext`), so a
/// job never waits behind a statement.
///
/// Not Sendable: it is only touched by its own thread, found through a thread-local.
final class ExecutorThread {
    unowned let executor: PostgresExecutor
    var next: UnownedJob?
    /// Jobs run from `next` in a row; past a bound the slot goes to the shared queue, so two
    /// tasks resuming each other cannot keep this thread from the queue forever.
    var slotStreak = 0

    static let slotStreakLimit = 32

    init(executor: PostgresExecutor) {
        self.executor = executor
    }

    /// The calling thread's record when it is one of an executor's threads.
    static var current: ExecutorThread? {
        guard let pointer = pthread_getspecific(currentKey) else { return nil }
        return Unmanaged<ExecutorThread>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Marks the calling thread as this one (or as none); the caller keeps `thread` alive.
    static func setCurrent(_ thread: ExecutorThread?) {
        pthread_setspecific(currentKey, thread.map { Unmanaged.passUnretained($0).toOpaque() })
    }

    /// Moves the slot's job to the shared queue (waking a parked thread for it): called before
    /// this thread blocks.
    func handOffNext() {
        guard let job = next else { return }
        next = nil
        executor.push(.task(job))
    }
}

/// The thread-local that points at the running thread's `ExecutorThread`.
private let currentKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
}()
