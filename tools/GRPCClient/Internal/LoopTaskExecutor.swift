import NIOCore
import Synchronization

/// A `TaskExecutor` that runs jobs on one NIO event loop, in batches.
///
/// Tasks started with this executor preference (see `GRPCConnection.taskExecutor`) run on the
/// connection's loop, so starting calls, sending and reading responses happen inline without
/// a thread hop, and a batch of resumed tasks shares one flush. (NIO 2.101 has no
/// `EventLoop: TaskExecutor` conformance.)
final class LoopTaskExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop
    private let pending = Mutex(Pending())

    private struct Pending: ~Copyable {
        var jobs: [UnownedJob] = []
        var drainScheduled = false
    }

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
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
