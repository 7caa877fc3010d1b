import ServiceContextModule
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Runs a queue's jobs with bounded concurrency until shutdown.
///
/// Claims in batches of up to `batchSize` whenever slots are free, runs each job in its own
/// child task, and completes finished jobs in batches (one script call for many) sent alongside
/// the next claim. A handler that throws fails the attempt (retry with backoff, or dead
/// letter). On graceful shutdown it stops claiming, lets running jobs finish for up to
/// `drainTimeout`, then cancels the rest and releases their jobs back to the queue, so nothing
/// waits out a lease.
public final class JobWorker: Service, Sendable {
    public typealias Handler = @Sendable (Job) async throws -> Void

    public struct Configuration: Sendable {
        /// Jobs run at once (`QUEUE_CONCURRENCY`).
        public var concurrency: Int
        /// Most jobs claimed by one claim.
        public var batchSize: Int
        /// Sleep when the queue was found empty.
        public var pollInterval: Duration
        public var drainTimeout: Duration

        /// 16 at once, claims of up to 100, polls every 20 ms, drains for 10 s.
        public static var defaults: Configuration {
            Configuration(concurrency: 16, batchSize: 100, pollInterval: .milliseconds(20), drainTimeout: .seconds(10))
        }

        public init(concurrency: Int, batchSize: Int, pollInterval: Duration, drainTimeout: Duration) {
            self.concurrency = max(1, concurrency)
            self.batchSize = max(1, batchSize)
            self.pollInterval = pollInterval
            self.drainTimeout = drainTimeout
        }
    }

    private struct Progress {
        var running: [String: Job] = [:]
        var finished: [String] = []
    }

    public let queue: JobQueue
    public let configuration: Configuration
    private let handler: Handler
    private let logger: Logger
    private let progress = Mutex(Progress())
    private let stopRequested = Atomic<Bool>(false)
    private let failedClaims = Atomic<Int>(0)

    /// Longest wait between claims while the queue cannot be reached.
    static let maxClaimBackoff = Duration.seconds(2)

    public init(queue: JobQueue, configuration: Configuration = .defaults, logger: Logger = Logger(label: "tally.queue"), handler: @escaping Handler) {
        self.queue = queue
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
    }

    /// Jobs running right now.
    public var runningCount: Int { progress.withLock { $0.running.count } }

    /// Claims that failed (Redis unreachable) since the worker started.
    var claimFailures: Int { failedClaims.load(ordering: .relaxed) }

    /// Works until graceful shutdown (service group), `stop()`, or cancellation (which
    /// skips the drain: running jobs are cancelled and released at once).
    public func run() async throws {
        await withGracefulShutdownHandler {
            await work()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops claiming and drains, as on graceful shutdown.
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
    }

    private func work() async {
        let lease = UUID().uuidString
        // The wait after the last failed claim; nil while claims succeed.
        var backoff: Duration?
        // Discarding: a finished job's task is freed at once instead of waiting in the group
        // for a `next()` nobody calls (unbounded growth over a long run).
        await withDiscardingTaskGroup { jobs in
            while !stopRequested.load(ordering: .relaxed) && !Task.isCancelled {
                // The last pass's completions travel with this claim: both land in one Redis
                // event-loop turn, so they share one AOF fsync instead of waiting for two.
                async let completed: Void = completeFinished(lease: lease)
                let free = configuration.concurrency - runningCount
                guard free > 0 else {
                    await completed
                    try? await Task.sleep(for: .milliseconds(1))
                    continue
                }
                let claimed: [Job]
                do {
                    claimed = try await queue.claim(max: min(free, configuration.batchSize), lease: lease)
                    if backoff != nil {
                        logger.notice("claiming from the queue works again", metadata: ["queue": "\(queue.name)"])
                        backoff = nil
                    }
                } catch {
                    await completed
                    failedClaims.add(1, ordering: .relaxed)
                    // Once per outage, not once per poll; the waits double up to the cap.
                    if backoff == nil {
                        logger.warning("claiming from the queue failed; retrying with backoff", metadata: [
                            "queue": "\(queue.name)", "error": "\(error)",
                        ])
                    }
                    let wait = min((backoff ?? configuration.pollInterval * 2.5) * 2, Self.maxClaimBackoff)
                    backoff = wait
                    try? await Task.sleep(for: wait)
                    continue
                }
                progress.withLock { progress in
                    for job in claimed { progress.running[job.id] = job }
                }
                for job in claimed {
                    jobs.addTask { await self.perform(job) }
                }
                await completed
                if claimed.count < min(free, configuration.batchSize) {
                    try? await Task.sleep(for: configuration.pollInterval)
                }
            }
            await drain(jobs: &jobs, lease: lease)
        }
        await completeFinished(lease: lease)
    }

    /// Runs the handler in the trace of the call that queued the job, so its log lines (and
    /// the jobs it queues in turn) carry that trace.
    private func perform(_ job: Job) async {
        await ServiceContext.withValue(.tracing(traceParent: job.traceParent)) {
            await performTraced(job)
        }
    }

    private func performTraced(_ job: Job) async {
        do {
            try await handler(job)
            logger.debug("job done", metadata: ["queue": "\(queue.name)", "job": "\(job.id)", "attempt": "\(job.attempt)"])
            progress.withLock { progress in
                progress.running[job.id] = nil
                progress.finished.append(job.id)
            }
        } catch {
            if Task.isCancelled {
                return  // shutdown: released by drain
            }
            progress.withLock { $0.running[job.id] = nil }
            if let notDue = error as? JobNotDue {
                if (try? await queue.postpone(job, by: notDue.retryAfter)) == nil {
                    logger.debug("postponing a job failed; its lease brings it back", metadata: ["queue": "\(queue.name)", "job": "\(job.id)"])
                }
                return
            }
            if let unavailable = error as? DependencyUnavailable {
                _ = try? await queue.postpone(job, by: unavailable.retryAfter)
                logger.warning("job postponed: dependency unavailable", metadata: ["queue": "\(queue.name)", "job": "\(job.id)", "reason": "\(unavailable.reason)"])
                return
            }
            do {
                let outcome = try await queue.fail(job, error: "\(error)")
                logger.info("job failed", metadata: ["queue": "\(queue.name)", "job": "\(job.id)", "attempt": "\(job.attempt)", "outcome": "\(outcome)"])
            } catch {
                // The lease will expire and the job come back: nothing is lost.
                logger.warning("recording a job failure failed", metadata: ["queue": "\(queue.name)", "job": "\(job.id)", "error": "\(error)"])
            }
        }
    }

    private func completeFinished(lease: String) async {
        let ids = progress.withLock { progress in
            let ids = progress.finished
            progress.finished.removeAll(keepingCapacity: true)
            return ids
        }
        guard !ids.isEmpty else { return }
        do {
            try await queue.complete(ids, lease: lease)
        } catch {
            // Retried at the next pass; if it never lands, the leases expire and the jobs run
            // again (at least once).
            progress.withLock { $0.finished.append(contentsOf: ids) }
            logger.warning("completing jobs failed", metadata: ["queue": "\(queue.name)", "error": "\(error)"])
            try? await Task.sleep(for: configuration.pollInterval)
        }
    }

    /// Lets running jobs finish within the drain timeout, then cancels and releases the rest.
    private func drain(jobs: inout DiscardingTaskGroup, lease: String) async {
        let deadline = ContinuousClock.now + configuration.drainTimeout
        while runningCount > 0 && ContinuousClock.now < deadline && !Task.isCancelled {
            await completeFinished(lease: lease)
            try? await Task.sleep(for: .milliseconds(5))
        }
        let unfinished = progress.withLock { progress in
            let ids = Array(progress.running.keys)
            progress.running.removeAll()
            return ids
        }
        jobs.cancelAll()
        if !unfinished.isEmpty {
            let released = (try? await queue.release(unfinished, lease: lease)) ?? 0
            logger.notice("released unfinished jobs at shutdown", metadata: ["queue": "\(queue.name)", "released": "\(released)"])
        }
    }
}
