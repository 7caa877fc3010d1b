import Foundation
internal import NIOCore

/// The threads a `PostgresPool` runs libpq's blocking calls on, as a `TaskExecutor`.
///
/// A task that prefers this executor (`withTaskExecutorPreference(pool.taskExecutor)`,
/// `Task(executorPreference:)`) runs on these threads, and its statements run inline: sent,
/// then received blocking on the thread the task is on, with no hand-off to another thread and
/// no continuation to resume, which is the libpq round trip and little else. Other tasks hand
/// each blocking call to one of these threads and are resumed when it is done, as before.
///
/// For DB-bound work (a job that runs a transaction of several statements), not for work that
/// mostly waits on other things: while a statement runs, its thread is blocked, so an actor
/// whose code runs here stays busy for the statement's duration instead of being free while
/// the task is suspended.
///
/// Threads: one per connection the pool may open plus spares, so a cancel request (PQcancel,
/// for a deadline or task cancellation) and jobs of tasks waiting for a connection always find
/// a thread while every connection is busy inline. Jobs a thread enqueues while it runs one
/// run next on the same thread (see `ExecutorThread`); others go to a shared FIFO queue that
/// wakes one parked thread per job. After the pool shuts down, jobs still enqueued here run on
/// the global concurrent executor.
///
/// @unchecked Sendable: all mutable state is in `shared`, guarded by its lock; `threadCount` is
/// immutable.
public final class PostgresExecutor: TaskExecutor, @unchecked Sendable {
    /// How many threads serve this executor.
    public let threadCount: Int
    let shared: ParkingLock<Shared>

    /// A unit of work in the shared queue: a task's job, or a blocking call submitted by a task
    /// that is not on these threads (or a cancel request).
    enum Work {
        case task(UnownedJob)
        case call(@Sendable () -> Void)
    }

    struct Shared {
        var queue = CircularBuffer<Work>(initialCapacity: 64)
        /// Threads parked in `wait()`, the only ones a signal can wake.
        var parked = 0
        /// Threads not yet exited; 0 after shutdown.
        var live: Int
        var stopping = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    init(threads: Int, name: String) {
        precondition(threads >= 1, "an executor needs a thread")
        threadCount = threads
        shared = ParkingLock(Shared(live: threads))
        for index in 0..<threads {
            let thread = Thread { [self] in self.serve() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Whether the caller runs on one of these threads (where statements run inline).
    public var isCurrentThread: Bool { currentThread != nil }

    /// The calling thread's record when it is one of these threads.
    var currentThread: ExecutorThread? {
        guard let thread = ExecutorThread.current, thread.executor === self else { return nil }
        return thread
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if let thread = currentThread {
            thread.handOffNext()
            thread.next = job
            return
        }
        push(.task(job))
    }

    /// Adds work to the shared queue (at its front for cancel requests, which must not wait
    /// behind jobs) and wakes one parked thread. After shutdown a task's job goes to the global
    /// executor and a call is refused (false).
    @discardableResult
    func push(_ work: Work, first: Bool = false) -> Bool {
        shared.lock()
        guard shared.state.live > 0 else {
            shared.unlock()
            if case .task(let job) = work {
                globalConcurrentExecutor.enqueue(ExecutorJob(job))
                return true
            }
            return false
        }
        if first { shared.state.queue.prepend(work) } else { shared.state.queue.append(work) }
        let wake = shared.state.parked > 0
        shared.unlock()
        if wake { shared.signal() }
        return true
    }

    /// One thread's loop: its slot first, then the shared queue, parking while both are empty;
    /// exits once stopping and the queue is drained.
    private func serve() {
        let me = ExecutorThread(executor: self)
        ExecutorThread.setCurrent(me)
        let unowned = asUnownedTaskExecutor()
        while true {
            if let job = me.next {
                me.next = nil
                if me.slotStreak < ExecutorThread.slotStreakLimit {
                    me.slotStreak += 1
                    job.runSynchronously(on: unowned)
                    continue
                }
                push(.task(job))
            }
            me.slotStreak = 0
            shared.lock()
            while shared.state.queue.isEmpty && !shared.state.stopping {
                shared.state.parked += 1
                shared.wait()
                shared.state.parked -= 1
            }
            guard let work = shared.state.queue.popFirst() else {
                shared.state.live -= 1
                var waiters: [CheckedContinuation<Void, Never>] = []
                if shared.state.live == 0 { swap(&waiters, &shared.state.stopWaiters) }
                shared.unlock()
                // No longer one of ours: what the waiters' resumption enqueues goes elsewhere.
                ExecutorThread.setCurrent(nil)
                for waiter in waiters { waiter.resume() }
                return
            }
            shared.unlock()
            switch work {
            case .task(let job): job.runSynchronously(on: unowned)
            case .call(let body): body()
            }
        }
    }
}
