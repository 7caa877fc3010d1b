import Units
import Foundation

/// A durable, named job queue in Redis: priorities, delayed jobs, retries with backoff,
/// leases, a dead-letter set, idempotent ids and stats.
///
/// Every state change is one script of `JobQueueScripts`, so concurrent workers on any number
/// of instances never see a job twice at once, and a Redis restart (AOF, `appendfsync always`)
/// loses no acknowledged job. Delivery is at least once: a job whose worker dies is claimed
/// again after its lease expires, so handlers must be idempotent.
public final class JobQueue: Sendable {
    public let name: String
    public let configuration: JobQueueConfiguration
    private let redis: RedisClient
    /// The hash tag every key of this queue starts with (see `JobQueueScripts`).
    let tag: String
    private let prefix: RedisArgument

    public init(name: String, redis: RedisClient, configuration: JobQueueConfiguration = .defaults) {
        self.name = name
        self.redis = redis
        self.configuration = configuration
        self.tag = "{q:\(name)}"
        self.prefix = RedisArgument(tag)
    }

    /// Enqueues jobs in one atomic step; returns the ids that were new (the others were
    /// duplicates and changed nothing).
    @discardableResult
    public func enqueue(_ jobs: [NewJob]) async throws -> [String] {
        guard !jobs.isEmpty else { return [] }
        var arguments: [RedisArgument] = [RedisArgument(jobs.count)]
        arguments.reserveCapacity(1 + jobs.count * 4)
        for job in jobs {
            let meta = meta(of: job)
            arguments.append(RedisArgument(job.id))
            arguments.append(Self.packed(meta: meta, traceParent: job.traceParent, payload: job.payload))
            arguments.append(RedisArgument(meta))
            arguments.append(RedisArgument(max(0, job.delay.milliseconds)))
        }
        let reply = try await redis.runAcknowledged(JobQueueScripts.enqueue, keys: [prefix], arguments: arguments)
        return (reply.array ?? []).compactMap(\.string)
    }

    /// A job whose items carry their own idempotency marks (e.g. the event ids of a batch).
    public struct MarkedJob: Sendable {
        public var job: NewJob
        public var marks: [String]

        public init(job: NewJob, marks: [String]) {
            self.job = job
            self.marks = marks
        }
    }

    /// Marks every item seen for `markTTL` and enqueues the jobs, atomically; returns the
    /// marks that were new. A job none of whose marks is new is not enqueued. (Delays are not
    /// supported here: marked jobs are due at once.)
    public func enqueue(marked jobs: [MarkedJob], markTTL: Duration) async throws -> Set<ExactID> {
        guard !jobs.isEmpty else { return [] }
        var arguments: [RedisArgument] = [RedisArgument(max(1, markTTL.milliseconds)), RedisArgument(jobs.count)]
        arguments.reserveCapacity(2 + jobs.reduce(0) { $0 + 4 + $1.marks.count })
        for marked in jobs {
            let meta = meta(of: marked.job)
            arguments.append(RedisArgument(marked.job.id))
            arguments.append(Self.packed(meta: meta, traceParent: marked.job.traceParent, payload: marked.job.payload))
            arguments.append(RedisArgument(meta))
            arguments.append(RedisArgument(marked.marks.count))
            arguments.append(contentsOf: marked.marks.map { RedisArgument($0) })
        }
        let reply = try await redis.runAcknowledged(JobQueueScripts.enqueueMarked, keys: [prefix], arguments: arguments)
        return Set((reply.array ?? []).compactMap { (mark: RESPValue) -> ExactID? in mark.string.map { ExactID($0) } })
    }

    /// Enqueues one job; false when its id was already known.
    @discardableResult
    public func enqueue(_ job: NewJob) async throws -> Bool {
        try await !enqueue([job]).isEmpty
    }

    /// Claims up to `max` jobs (highest priority first) under a new lease, and when `maxBytes`
    /// is given only as many as fit in it (their payloads' sizes summed; the first job is
    /// claimed whatever its size). Due delayed jobs and expired leases are returned to the
    /// queue first.
    public func claim(max: Int, maxBytes: Int? = nil, lease: String = JobQueue.newLease()) async throws -> [Job] {
        let reply = try await redis.run(
            JobQueueScripts.claim, keys: [prefix],
            arguments: [RedisArgument(max), RedisArgument(configuration.leaseTimeout.milliseconds), RedisArgument(lease),
                        RedisArgument(Swift.max(0, maxBytes ?? 0))])
        // Flat: id, "<meta>[;<traceparent>]:<payload>" per job (no nested array per job to decode).
        let fields = reply.array ?? []
        guard fields.count % 2 == 0 else { throw RedisError(.unexpectedReply, "queue \(name): malformed claimed jobs") }
        var jobs: [Job] = []
        jobs.reserveCapacity(fields.count / 2)
        for start in stride(from: 0, to: fields.count, by: 2) {
            guard let id = fields[start].string, let packed = fields[start + 1].bytes,
                let colon = packed.firstIndex(of: UInt8(ascii: ":"))
            else { throw RedisError(.unexpectedReply, "queue \(name): malformed claimed job") }
            let head = packed[..<colon]
            let semicolon = head.firstIndex(of: UInt8(ascii: ";"))
            guard let meta = Int(String(decoding: head[..<(semicolon ?? colon)], as: UTF8.self)) else {
                throw RedisError(.unexpectedReply, "queue \(name): malformed claimed job")
            }
            // meta = finished attempts * 1e8 + max attempts * 10 + priority (see JobQueueScripts).
            jobs.append(Job(id: id, payload: Array(packed[(colon + 1)...]), attempt: meta / 100_000_000 + 1,
                            maxAttempts: meta % 100_000_000 / 10, lease: lease,
                            traceParent: semicolon.map { String(decoding: head[($0 + 1)...], as: UTF8.self) }))
        }
        return jobs
    }

    /// Completes jobs of one lease; returns how many were still held by it.
    @discardableResult
    public func complete(_ ids: [String], lease: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        var arguments = [RedisArgument(lease), RedisArgument(configuration.keepCount), RedisArgument(configuration.keepAge.milliseconds)]
        arguments.reserveCapacity(3 + ids.count)
        for id in ids { arguments.append(RedisArgument(id)) }
        return Int(try await redis.run(JobQueueScripts.complete, keys: [prefix], arguments: arguments).int ?? 0)
    }

    /// Records a failed attempt: retried after backoff, or dead-lettered after the last one.
    @discardableResult
    public func fail(_ job: Job, error: String) async throws -> JobFailureOutcome {
        let jitter = configuration.backoffJitter > 0 ? Double.random(in: -configuration.backoffJitter...configuration.backoffJitter) : 0
        let reply = try await redis.run(
            JobQueueScripts.fail, keys: [prefix],
            arguments: [
                RedisArgument(job.lease), RedisArgument(job.id), RedisArgument(String(error.prefix(1000))),
                RedisArgument(configuration.backoffBase.milliseconds), RedisArgument(configuration.backoffMax.milliseconds),
                RedisArgument(jitter), RedisArgument(configuration.keepCount), RedisArgument(configuration.keepAge.milliseconds),
            ])
        guard let parts = reply.array, parts.count == 2, let outcome = parts[0].string else {
            throw RedisError(.unexpectedReply, "queue \(name): malformed failure outcome")
        }
        switch outcome {
        case "retry": return .retry(after: .milliseconds(parts[1].int ?? 0))
        case "dead": return .dead
        default: return .stale
        }
    }

    /// Hands claimed jobs back unprocessed (shutdown): they wait again, the attempt uncounted.
    @discardableResult
    public func release(_ ids: [String], lease: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let arguments = [RedisArgument(lease)] + ids.map { RedisArgument($0) }
        return Int(try await redis.run(JobQueueScripts.release, keys: [prefix], arguments: arguments).int ?? 0)
    }

    /// Puts a claimed job back, due after `delay`, without counting the attempt (its
    /// dependency was unavailable; the job itself did not fail).
    @discardableResult
    public func postpone(_ job: Job, by delay: Duration) async throws -> Bool {
        try await postpone([job], by: delay) == 1
    }

    /// `postpone` for jobs of one claim (one lease) in one script call; returns how many were
    /// still held by it.
    @discardableResult
    public func postpone(_ jobs: [Job], by delay: Duration) async throws -> Int {
        guard let lease = jobs.first?.lease else { return 0 }
        precondition(jobs.allSatisfy { $0.lease == lease }, "postponed together: jobs of one claim")
        let arguments = [RedisArgument(lease), RedisArgument(delay.milliseconds)] + jobs.map { RedisArgument($0.id) }
        return Int(try await redis.run(JobQueueScripts.postpone, keys: [prefix], arguments: arguments).int ?? 0)
    }

    public func stats() async throws -> JobQueueStats {
        let reply = try await redis.run(JobQueueScripts.stats, keys: [prefix], arguments: [])
        let flat = reply.array ?? []
        var values: [String: Int64] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            if let name = flat[index].string { values[name] = flat[index + 1].int ?? 0 }
        }
        var stats = JobQueueStats()
        stats.waiting = Int(values["waiting"] ?? 0)
        stats.delayed = Int(values["delayed"] ?? 0)
        stats.active = Int(values["active"] ?? 0)
        stats.dead = Int(values["dead_now"] ?? 0)
        stats.enqueued = Int(values["enqueued"] ?? 0)
        stats.completed = Int(values["completed"] ?? 0)
        stats.failed = Int(values["failed"] ?? 0)
        stats.deadLettered = Int(values["dead"] ?? 0)
        stats.leasesExpired = Int(values["lease_expired"] ?? 0)
        stats.throughputPerSecond = Double(values["completed_last_minute"] ?? 0) / 60
        if stats.completed > 0 {
            stats.meanProcessingTime = .milliseconds(Double(values["processing_ms"] ?? 0) / Double(stats.completed))
        }
        return stats
    }

    /// A job's stored record, or nil when unknown (or trimmed by retention).
    public func record(of id: String) async throws -> JobRecord? {
        let reply = try await redis.run(JobQueueScripts.record, keys: [prefix], arguments: [RedisArgument(id)])
        guard let fields = reply.array, fields.count == 3, let raw = fields[0].string, let state = JobRecord.State(rawValue: raw) else {
            return nil
        }
        return JobRecord(id: id, state: state, attempts: Int(fields[1].int ?? 0), lastError: fields[2].string)
    }

    /// A new job's `:meta` value (see `JobQueueScripts`): max attempts * 10 + priority, no
    /// attempt counted yet. Packed here so the script stores it as sent.
    private func meta(of job: NewJob) -> Int {
        let maxAttempts = min(JobQueueScripts.maxAttemptsLimit, max(1, job.maxAttempts ?? configuration.maxAttempts))
        return maxAttempts * 10 + min(9, max(0, job.priority))
    }

    /// The `:payload` value of a new job: its meta, its trace (`;traceparent`, when it has
    /// one), a colon, the payload. (A traceparent holds neither `;` nor `:`.)
    private static func packed(meta: Int, traceParent: String?, payload: [UInt8]) -> RedisArgument {
        var bytes = Array("\(meta)".utf8)
        if let traceParent, !traceParent.utf8.contains(where: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ";") }) {
            bytes.append(UInt8(ascii: ";"))
            bytes.append(contentsOf: traceParent.utf8)
        }
        bytes.append(UInt8(ascii: ":"))
        bytes.append(contentsOf: payload)
        return RedisArgument(bytes: bytes)
    }

    /// A fresh lease token (one per worker run or claim).
    public static func newLease() -> String { UUID().uuidString }

    /// Ids in the dead-letter set, oldest first.
    public func deadLetters(limit: Int = 100) async throws -> [String] {
        let reply = try await redis.send(RedisCommand("ZRANGE", RedisArgument("\(tag):dead"), 0, RedisArgument(limit - 1)))
        return (reply.array ?? []).compactMap(\.string)
    }
}
