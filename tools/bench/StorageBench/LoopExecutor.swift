import NIOCore

/// Runs tasks' jobs on one NIO event loop, so a benchmark's callers share the loop with their
/// Redis connection the way RPC handlers do in the server.
final class LoopExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
