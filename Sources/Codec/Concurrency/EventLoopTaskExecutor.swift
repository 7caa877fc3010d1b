public import NIOCore
import Synchronization

/// A `TaskExecutor` that runs jobs on one NIO event loop, in batches: the server's handlers
/// and the client's calls (GRPCClient) both run on their connection's loop.
///
/// RPC handlers start with `Task.immediate(executorPreference:)` on their connection's loop, so
/// a handler that never suspends runs inline in the read that delivered its request. When a
/// handler does suspend, its continuation comes back here: jobs queue up and one
/// `eventLoop.execute` drains them all, so the connection flushes once for the whole batch
/// instead of once per job. (NIO 2.101 has no `EventLoop: TaskExecutor` conformance.)
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    public let eventLoop: any EventLoop
    private let pending = Mutex(Pending())

    private struct Pending: ~Copyable {
        var jobs: [UnownedJob] = []
        var drainScheduled = false
    }

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let mustSchedule = pending.withLock { state in
            state.jobs.append(unowned)
            if state.drainScheduled { return false }
            state.drainScheduled = true
            return true
        }
        if mustSchedule {
            eventLoop.execute { self.drain() }
        }
    }

    private func drain() {
        // Jobs enqueued while draining (a resumed handler resuming another) join this batch.
        while true {
            let batch = pending.withLock { state -> [UnownedJob] in
                if state.jobs.isEmpty {
                    state.drainScheduled = false
                    return []
                }
                let jobs = state.jobs
                state.jobs.removeAll(keepingCapacity: true)
                return jobs
            }
            if batch.isEmpty { return }
            for job in batch {
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }
}
