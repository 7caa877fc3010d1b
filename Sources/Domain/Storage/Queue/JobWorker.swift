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
///
/// With a group handler and `grouping` above one job, each slot runs a group of claimed jobs
/// (up to `grouping.maxJobs` and `grouping.maxBytes` of payload) in one handler call, e.g. one
/// transaction for all of them. A group that fails is run again job by job with the single-job
/// handler, so a bad job fails alone and the others complete; a job on its second attempt or
/// later runs alone from the start. Handlers must be idempotent anyway (delivery is at least
/// once), so the jobs of a group that failed after part of its work was done are safe to rerun.
public final class JobWorker: Service, Sendable {
    public typealias Handler = @Sendable (Job) async throws -> Void
    /// Runs several jobs together; throws when any of them could not be done (then they are
    /// run again one by one).
    public typealias GroupHandler = @Sendable ([Job]) async throws -> Void

    /// How many claimed jobs one group handler call takes.
    public struct Grouping: Sendable, Hashable {
        /// Jobs per group; 1 runs every job alone.
        public var maxJobs: Int
        /// Payload bytes per group (a job larger than this runs alone).
        public var maxBytes: Int

        /// Every job alone.
        public static var single: Grouping { Grouping(maxJobs: 1, maxBytes: .max) }

        public init(maxJobs: Int, maxBytes: Int) {
            self.maxJobs = max(1, maxJobs)
            self.maxBytes = max(1, maxBytes)
        }
    }

    public struct Configuration: Sendable {
        /// Jobs (or groups of jobs) run at once (`QUEUE_CONCURRENCY`).
        public var concurrency: Int
        /// Most jobs claimed by one claim (at least one group's worth is claimed when grouping).
        public var batchSize: Int
        /// Sleep when the queue was found empty.
        public var pollInterval: Duration
        public var drainTimeout: Duration
        /// Jobs per handler call, when the worker has a group handler.
        public var grouping: Grouping

        /// 16 at once, claims of up to 100, polls every 20 ms, drains for 10 s, every job alone.
        public static var defaults: Configuration {
            Configuration(concurrency: 16, batchSize: 100, pollInterval: .milliseconds(20), drainTimeout: .seconds(10))
        }

        public init(concurrency: Int, batchSize: Int, pollInterval: Duration, drainTimeout: Duration, grouping: Grouping = .single) {
            self.concurrency = max(1, concurrency)
            self.batchSize = max(1, batchSize)
            self.pollInterval = pollInterval
            self.drainTimeout = drainTimeout
            self.grouping = grouping
        }
    }

    private struct Progress {
        var running: [String: Job] = [:]
        /// Slots in use: a group of jobs takes one.
        var slots = 0
        var finished: [String] = []
    }

    public let queue: JobQueue
    public let configuration: Configuration
    private let handler: Handler
    private let groupHandler: GroupHandler?
    private let logger: Logger
    private let progress = Mutex(Progress())
    private let stopRequested = Atomic<Bool>(false)
    private let failedClaims = Atomic<Int>(0)

    /// Longest wait between claims while the queue cannot be reached.
    static let maxClaimBackoff = Duration.seconds(2)

    /// `groupHandler`, when given, runs groups of jobs as `configuration.grouping` allows;
    /// `handler` runs single jobs and the jobs of a group that failed.
    public init(queue: JobQueue, configuration: Configuration = .defaults, logger: Logger = Logger(label: "tally.queue"),
                handler: @escaping Handler, groupHandler: GroupHandler? = nil) {
        self.queue = queue
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
        self.groupHandler = groupHandler
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
                let free = configuration.concurrency - progress.withLock { $0.slots }
                guard free > 0 else {
                    await completed
                    try? await Task.sleep(for: .milliseconds(1))
                    continue
                }
                let grouping = groupHandler == nil ? Grouping.single : configuration.grouping
                // A group's worth at least, else one job per free slot, as the claim size allows.
                let wanted = min(free * grouping.maxJobs, max(configuration.batchSize, grouping.maxJobs))
                let byteLimit = grouping.maxJobs > 1 ? Self.product(free, grouping.maxBytes) : nil
                let claimed: [Job]
                do {
                    claimed = try await queue.claim(max: wanted, maxBytes: byteLimit, lease: lease)
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
                // One task per free slot at most: more groups than slots (jobs running alone
                // after a failure, or split by size) take turns in them.
                let groups = Self.groups(of: claimed, grouping)
                let tasks = min(free, groups.count)
                progress.withLock { progress in
                    for job in claimed { progress.running[job.id] = job }
                    progress.slots += tasks
                }
                for slot in 0..<tasks {
                    let turns = stride(from: slot, to: groups.count, by: tasks).map { groups[$0] }
                    jobs.addTask {
                        for group in turns { await self.perform(group) }
                        self.progress.withLock { $0.slots -= 1 }
                    }
                }
                await completed
                // Fewer than asked, and not for want of room: the queue is empty for now.
                let claimedBytes = claimed.reduce(0) { $0 + $1.payload.count }
                if claimed.count < wanted && byteLimit.map({ claimedBytes <= $0 - grouping.maxBytes }) ?? true {
                    try? await Task.sleep(for: configuration.pollInterval)
                }
            }
            await drain(jobs: &jobs, lease: lease)
        }
        await completeFinished(lease: lease)
    }

    /// Claimed jobs in groups, in claim order: each up to the grouping's jobs and bytes; a job
    /// on its second attempt or later alone (it may be the one that failed its group).
    static func groups(of jobs: [Job], _ grouping: Grouping) -> [[Job]] {
        var groups: [[Job]] = []
        var current: [Job] = []
        var bytes = 0
        for job in jobs {
            if job.attempt > 1 || grouping.maxJobs == 1 {
                groups.append([job])
                continue
            }
            if !current.isEmpty && (current.count >= grouping.maxJobs || bytes + job.payload.count > grouping.maxBytes) {
                groups.append(current)
                current = []
                bytes = 0
            }
            current.append(job)
            bytes += job.payload.count
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }

    /// `a * b`, or `Int.max` when that overflows.
    private static func product(_ a: Int, _ b: Int) -> Int {
        let (result, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : result
    }

    /// Runs a group in one group handler call; when that fails, its jobs one by one.
    private func perform(_ group: [Job]) async {
        guard group.count > 1, let groupHandler else {
            for job in group { await perform(job) }
            return
        }
        do {
            try await groupHandler(group)
            if logger.logLevel <= .debug {
                // One line per job, each in the trace of the call that queued it, as when jobs run alone.
                for job in group {
                    ServiceContext.withValue(.tracing(traceParent: job.traceParent)) {
                        logger.debug("job done", metadata: [
                            "queue": "\(queue.name)", "job": "\(job.id)", "attempt": "\(job.attempt)", "group": "\(group.count)",
                        ])
                    }
                }
            }
            progress.withLock { progress in
                for job in group {
                    progress.running[job.id] = nil
                    progress.finished.append(job.id)
                }
            }
        } catch {
            if Task.isCancelled {
                return  // shutdown: released by drain
            }
            if let unavailable = error as? DependencyUnavailable {
                progress.withLock { progress in
                    for job in group { progress.running[job.id] = nil }
                }
                _ = try? await queue.postpone(group, by: unavailable.retryAfter)
                logger.warning("jobs postponed: dependency unavailable", metadata: [
                    "queue": "\(queue.name)", "jobs": "\(group.count)", "reason": "\(unavailable.reason)",
                ])
                return
            }
            logger.info("a group of jobs failed; running them one by one", metadata: [
                "queue": "\(queue.name)", "jobs": "\(group.count)", "error": "\(error)",
            ])
            for job in group { await perform(job) }
        }
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
