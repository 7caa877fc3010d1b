import TestSupport
import Foundation
import Logging
import NIOPosix
import Synchronization
import ServiceContextModule
import Testing

@testable import Storage

@Suite("Durable job queue")
struct JobQueueTests {
    static func withQueue<T>(
        url: String = TestServices.shared.redisURL,
        _ adjust: (inout JobQueueConfiguration) -> Void = { _ in },
        _ body: (JobQueue) async throws -> T
    ) async throws -> T {
        try await withQueueAndRedis(url: url, adjust) { queue, _ in try await body(queue) }
    }

    /// `withQueue`, also handing over the queue's Redis client (to move its stored time).
    static func withQueueAndRedis<T>(
        url: String = TestServices.shared.redisURL,
        _ adjust: (inout JobQueueConfiguration) -> Void = { _ in },
        _ body: (JobQueue, RedisClient) async throws -> T
    ) async throws -> T {
        try await TestRedis.withClient(url: url, { $0.maxReconnectDelay = .milliseconds(100) }) { redis async throws in
            var configuration = JobQueueConfiguration.defaults
            adjust(&configuration)
            return try await body(JobQueue(name: "test-\(UUID().uuidString)", redis: redis, configuration: configuration), redis)
        }
    }

    static func payload(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Moves time forward in the queue's stored state instead of waiting for it (a loaded
    /// machine makes real waits unpredictable): `ids` of `:delayed` become due now.
    static func makeDue(_ ids: [String], in queue: JobQueue, redis: RedisClient) async throws {
        for id in ids {
            let moved = try await redis.send(RedisCommand("ZADD", RedisArgument("{q:\(queue.name)}:delayed"), "XX", "CH", "1", RedisArgument(id))).int
            #expect(moved == 1, "\(id) was delayed")
        }
    }

    @Test("higher priorities are claimed first, FIFO within a priority")
    func priorities() async throws {
        try await Self.withQueue { queue async throws in
            try await queue.enqueue([
                NewJob(id: "low-1", payload: Self.payload("a"), priority: 0),
                NewJob(id: "high-1", payload: Self.payload("b"), priority: 9),
                NewJob(id: "mid-1", payload: Self.payload("c"), priority: 5),
                NewJob(id: "low-2", payload: Self.payload("d"), priority: 0),
                NewJob(id: "high-2", payload: Self.payload("e"), priority: 9),
            ])
            let claimed = try await queue.claim(max: 10)
            #expect(claimed.map(\.id) == ["high-1", "high-2", "mid-1", "low-1", "low-2"])
            #expect(claimed.first?.payload == Self.payload("b"))
            #expect(claimed.allSatisfy { $0.attempt == 1 })
            #expect(try await queue.claim(max: 10).isEmpty)
        }
    }

    @Test("a delayed job is claimable only once due")
    func delayed() async throws {
        try await Self.withQueueAndRedis { queue, redis async throws in
            // An hour: not due during the test, however slow the machine.
            try await queue.enqueue(NewJob(id: "later", payload: [], delay: .seconds(3600)))
            try await queue.enqueue(NewJob(id: "now", payload: []))
            #expect(try await queue.claim(max: 10).map(\.id) == ["now"])
            #expect(try await queue.record(of: "later")?.state == .delayed)
            try await Self.makeDue(["later"], in: queue, redis: redis)
            #expect(try await queue.claim(max: 10).map(\.id) == ["later"])
        }
    }

    @Test("failed attempts retry after exponential backoff, then dead-letter")
    func retriesAndDeadLetter() async throws {
        try await Self.withQueue({
            $0.maxAttempts = 3
            $0.backoffBase = .milliseconds(100)
            $0.backoffJitter = 0
        }) { queue async throws in
            try await queue.enqueue(NewJob(id: "flaky", payload: []))
            var delays: [Duration] = []
            for attempt in 1...3 {
                var claimed: [Job] = []
                for _ in 0..<100 where claimed.isEmpty {
                    claimed = try await queue.claim(max: 1)
                    if claimed.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
                }
                let job = try #require(claimed.first)
                #expect(job.attempt == attempt)
                switch try await queue.fail(job, error: "provider said no (\(attempt))") {
                case .retry(let delay): delays.append(delay)
                case .dead: #expect(attempt == 3)
                case .stale: Issue.record("the lease was still ours")
                }
            }
            #expect(delays == [.milliseconds(100), .milliseconds(200)])
            #expect(try await queue.deadLetters() == ["flaky"])
            let record = try #require(try await queue.record(of: "flaky"))
            #expect(record.state == .dead)
            #expect(record.attempts == 3)
            #expect(record.lastError == "provider said no (3)")
            let stats = try await queue.stats()
            #expect(stats.failed == 2)
            #expect(stats.deadLettered == 1)
            #expect(stats.dead == 1)
        }
    }

    @Test("a job carries the trace of the work that queued it through claims and retries; its payload stays whole")
    func traceTravels() async throws {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        try await Self.withQueueAndRedis({ $0.backoffBase = .milliseconds(1); $0.backoffJitter = 0 }) { queue, redis async throws in
            // From the current task's context by default; a payload holding ':' and ';' is untouched.
            _ = try await ServiceContext.withValue(.tracing(traceParent: parent)) {
                try await queue.enqueue(NewJob(id: "traced", payload: Self.payload("a:b;c")))
            }
            try await queue.enqueue(NewJob(id: "untraced", payload: Self.payload("x"), traceParent: nil))
            let first = try await queue.claim(max: 2)
            #expect(Set(first.map { "\($0.id)=\($0.traceParent ?? "none")" }) == ["traced=\(parent)", "untraced=none"])
            #expect(first.first { $0.id == "traced" }?.payload == Self.payload("a:b;c"))
            // A failed attempt rewrites the stored meta; the trace and payload stay.
            let traced = try #require(first.first { $0.id == "traced" })
            guard case .retry = try await queue.fail(traced, error: "again") else { Issue.record("not retried"); return }
            try await Self.makeDue(["traced"], in: queue, redis: redis)
            var again: [Job] = []
            for _ in 0..<100 where again.isEmpty {
                again = try await queue.claim(max: 1)
                if again.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            }
            let retried = try #require(again.first)
            #expect(retried.attempt == 2 && retried.traceParent == parent && retried.payload == Self.payload("a:b;c"))
        }
    }

    @Test("backoff spreads retries by the configured jitter and stops at the cap")
    func backoffJitterAndCap() async throws {
        try await Self.withQueue({
            $0.maxAttempts = 10
            $0.backoffBase = .seconds(1)
            $0.backoffMax = .seconds(2)
            $0.backoffJitter = 0.2
        }) { queue async throws in
            try await queue.enqueue((0..<20).map { NewJob(id: "j\($0)", payload: []) })
            for job in try await queue.claim(max: 20) {
                guard case .retry(let delay) = try await queue.fail(job, error: "x") else {
                    Issue.record("expected a retry")
                    continue
                }
                #expect(delay >= .milliseconds(800) && delay <= .milliseconds(1200))
            }
        }
    }

    @Test("an enqueued id is accepted once: retries of an enqueue are safe")
    func idempotentIDs() async throws {
        try await Self.withQueue { queue async throws in
            #expect(try await queue.enqueue(NewJob(id: "topup-42", payload: Self.payload("first"))))
            #expect(try await queue.enqueue(NewJob(id: "topup-42", payload: Self.payload("second"))) == false)
            #expect(try await queue.enqueue([NewJob(id: "topup-42", payload: []), NewJob(id: "topup-43", payload: [])]) == ["topup-43"])
            let claimed = try await queue.claim(max: 10)
            #expect(claimed.map(\.id) == ["topup-42", "topup-43"])
            #expect(claimed[0].payload == Self.payload("first"))
            try await queue.complete(["topup-42"], lease: claimed[0].lease)
            #expect(try await queue.enqueue(NewJob(id: "topup-42", payload: [])) == false, "completed ids stay known while retained")
            #expect(try await queue.stats().enqueued == 2)
        }
    }

    @Test("an expired lease returns the job; the old holder can no longer complete it")
    func leaseExpiry() async throws {
        // An hour's lease: it does not run out during the test; expiry is moved forward.
        try await Self.withQueueAndRedis({ $0.leaseTimeout = .seconds(3600) }) { queue, redis async throws in
            try await queue.enqueue(NewJob(id: "slow", payload: []))
            let first = try #require(try await queue.claim(max: 1).first)
            #expect(try await queue.claim(max: 1).isEmpty, "still leased")
            try await TestRedis.expireLeases(of: queue, redis: redis)
            let again = try await queue.claim(max: 1)
            let second = try #require(again.first)
            #expect(second.id == "slow")
            #expect(second.attempt == 2)
            #expect(try await queue.complete(["slow"], lease: first.lease) == 0)
            #expect(try await queue.fail(first, error: "late") == .stale)
            #expect(try await queue.complete(["slow"], lease: second.lease) == 1)
            let stats = try await queue.stats()
            #expect(stats.leasesExpired == second.attempt - 1)
            #expect(stats.completed == 1)
        }
    }

    @Test("jobs held by a worker process killed with SIGKILL come back after the lease")
    func killedWorkerProcess() async throws {
        let bench = TestServices.repositoryRoot.appendingPathComponent(".build/debug/StorageBench")
        try #require(FileManager.default.isExecutableFile(atPath: bench.path), "build StorageBench first (swift build)")
        // An hour's lease, as for `leaseExpiry`: it runs out when the test moves it.
        try await Self.withQueueAndRedis({ $0.leaseTimeout = .seconds(3600) }) { queue, redis async throws in
            try await queue.enqueue((0..<5).map { NewJob(id: "held-\($0)", payload: []) })
            let queueName = queue.name
            let redisURL = TestServices.shared.redisURL
            let line = try await TestServices.offCooperativePool { () throws -> String in
                let worker = Process()
                worker.executableURL = bench
                worker.arguments = ["queue-hold", "--queue", queueName, "--lease-ms", "3600000", "--jobs", "5"]
                var environment = ProcessInfo.processInfo.environment
                environment["REDIS_URL"] = redisURL
                worker.environment = environment
                let pipe = Pipe()
                worker.standardOutput = pipe
                try worker.run()
                let line = pipe.fileHandleForReading.availableLine()
                kill(worker.processIdentifier, SIGKILL)
                worker.waitUntilExit()
                return line
            }
            #expect(line == "holding 5")
            #expect(try await queue.claim(max: 5).isEmpty, "still leased to the dead worker")
            try await TestRedis.expireLeases(of: queue, redis: redis)
            let returned = try await queue.claim(max: 10)
            #expect(Set(returned.map(\.id)) == Set((0..<5).map { "held-\($0)" }))
            #expect(returned.allSatisfy { $0.attempt == 2 }, "the dead worker's attempt counts")
        }
    }

    @Test("retention keeps the newest completed records up to the configured count")
    func retention() async throws {
        try await Self.withQueue({ $0.keepCount = 3 }) { queue async throws in
            try await queue.enqueue((0..<10).map { NewJob(id: "r\($0)", payload: []) })
            for job in try await queue.claim(max: 10) {
                try await queue.complete([job.id], lease: job.lease)
            }
            var kept = 0
            for index in 0..<10 where try await queue.record(of: "r\(index)") != nil { kept += 1 }
            #expect(kept == 3)
            #expect(try await queue.stats().completed == 10)
        }
    }

    @Test("retention by age forgets completed records, so their ids are new again")
    func retentionByAge() async throws {
        try await Self.withQueue({ $0.keepAge = .milliseconds(50) }) { queue async throws in
            try await queue.enqueue((0..<3).map { NewJob(id: "old\($0)", payload: []) })
            let claimed = try await queue.claim(max: 3)
            #expect(try await queue.complete(claimed.map(\.id), lease: claimed[0].lease) == 3)
            try await Task.sleep(for: .milliseconds(100))
            // Trimming happens on completion: complete another job to trigger it.
            try await queue.enqueue(NewJob(id: "trigger", payload: []))
            let trigger = try await queue.claim(max: 1)
            try await queue.complete(trigger.map(\.id), lease: trigger[0].lease)
            for index in 0..<3 {
                #expect(try await queue.record(of: "old\(index)") == nil)
            }
            #expect(try await queue.enqueue(NewJob(id: "old0", payload: [])), "a forgotten id is accepted again")
        }
    }

    @Test("a record follows its job through waiting, active, delayed and completed")
    func recordStates() async throws {
        try await Self.withQueue({
            $0.backoffBase = .seconds(60)
            $0.backoffJitter = 0
        }) { queue async throws in
            #expect(try await queue.record(of: "nobody") == nil)
            try await queue.enqueue(NewJob(id: "tracked", payload: Self.payload("p")))
            #expect(try await queue.record(of: "tracked") == JobRecord(id: "tracked", state: .waiting, attempts: 0, lastError: nil))
            let first = try #require(try await queue.claim(max: 1).first)
            #expect(try await queue.record(of: "tracked") == JobRecord(id: "tracked", state: .active, attempts: 1, lastError: nil))
            #expect(try await queue.fail(first, error: "down") == .retry(after: .seconds(60)))
            #expect(try await queue.record(of: "tracked") == JobRecord(id: "tracked", state: .delayed, attempts: 1, lastError: "down"))
            try await queue.enqueue(NewJob(id: "other", payload: []))
            let second = try #require(try await queue.claim(max: 1).first)
            try await queue.complete([second.id], lease: second.lease)
            #expect(try await queue.record(of: "other") == JobRecord(id: "other", state: .completed, attempts: 1, lastError: nil))
        }
    }

    @Test("batches larger than one Lua call can unpack are split, not refused", arguments: [5_000])
    func largeBatches(count: Int) async throws {
        try await Self.withQueue { queue async throws in
            let ids = (0..<count).map { "big-\($0)" }
            #expect(try await queue.enqueue(ids.map { NewJob(id: $0, payload: Self.payload($0)) }).count == count)
            let claimed = try await queue.claim(max: count)
            #expect(claimed.map(\.id) == ids, "FIFO across chunks")
            #expect(claimed.allSatisfy { $0.payload == Self.payload($0.id) })
            #expect(try await queue.complete(ids, lease: claimed[0].lease) == count)
            let stats = try await queue.stats()
            #expect(stats.completed == count && stats.active == 0 && stats.waiting == 0)
        }
    }

    @Test("marked enqueue: a mark is fresh once within its ttl, and a job without fresh marks is not queued")
    func markedEnqueue() async throws {
        try await Self.withQueue { queue async throws in
            // An hour: the marks stay fresh for the whole first part, however slow the machine.
            let ttl = Duration.seconds(3600)
            let first = try await queue.enqueue(
                marked: [
                    JobQueue.MarkedJob(job: NewJob(id: "batch-1", payload: Self.payload("1"), priority: 9), marks: ["e1", "e2", "e1"]),
                    JobQueue.MarkedJob(job: NewJob(id: "batch-2", payload: Self.payload("2")), marks: ["e2", "e3"]),
                ], markTTL: ttl)
            #expect(first == ["e1", "e2", "e3"])
            let second = try await queue.enqueue(
                marked: [
                    JobQueue.MarkedJob(job: NewJob(id: "batch-3", payload: []), marks: ["e1", "e3"]),
                    JobQueue.MarkedJob(job: NewJob(id: "batch-4", payload: []), marks: ["e1", "e4"]),
                ], markTTL: ttl)
            #expect(second == ["e4"])
            #expect(try await queue.claim(max: 10).map(\.id) == ["batch-1", "batch-2", "batch-4"], "batch-3 had no fresh mark")
            // Remembered for at most 1.5x the ttl (a short one; a later wait only makes it older).
            let short = Duration.milliseconds(400)
            #expect(try await queue.enqueue(marked: [JobQueue.MarkedJob(job: NewJob(id: "batch-5", payload: []), marks: ["f1"])], markTTL: short) == ["f1"])
            try await Task.sleep(for: short * 2)
            #expect(try await queue.enqueue(marked: [JobQueue.MarkedJob(job: NewJob(id: "batch-6", payload: []), marks: ["f1"])], markTTL: short) == ["f1"])
        }
    }

    @Test("a worker runs every job once with bounded concurrency, retrying failures")
    func worker() async throws {
        try await Self.withQueue({
            $0.backoffBase = .milliseconds(10)
            $0.backoffJitter = 0
        }) { queue async throws in
            try await queue.enqueue((0..<300).map { NewJob(id: "w\($0)", payload: Self.payload("\($0)")) })
            let seen = Mutex<[String: Int]>([:])
            let concurrent = Atomic<Int>(0)
            let peak = Atomic<Int>(0)
            let worker = JobWorker(
                queue: queue,
                configuration: .init(concurrency: 8, batchSize: 5, pollInterval: .milliseconds(5), drainTimeout: .seconds(5))
            ) { job in
                let now = concurrent.add(1, ordering: .relaxed).newValue
                peak.max(now, ordering: .relaxed)
                defer { concurrent.subtract(1, ordering: .relaxed) }
                try await Task.sleep(for: .milliseconds(1))
                let count = seen.withLock { seen in
                    seen[job.id, default: 0] += 1
                    return seen[job.id]!
                }
                if job.id.hasSuffix("7") && count == 1 { throw ProviderError() }
            }
            let running = Task { try await worker.run() }
            for _ in 0..<400 {
                if try await queue.stats().completed == 300 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            worker.stop()
            try await running.value
            let stats = try await queue.stats()
            #expect(stats.completed == 300)
            #expect(stats.failed == 30)
            #expect(stats.waiting == 0 && stats.active == 0 && stats.delayed == 0)
            #expect(peak.load(ordering: .relaxed) <= 8)
            #expect(seen.withLock { $0.count } == 300)
        }
    }

    @Test("a job whose dependency is down is postponed without spending attempts")
    func dependencyOutagePostpones() async throws {
        try await Self.withQueue({ $0.maxAttempts = 2 }) { queue async throws in
            try await queue.enqueue(NewJob(id: "needs-db", payload: []))
            let outage = Atomic<Int>(0)
            let worker = JobWorker(
                queue: queue, configuration: .init(concurrency: 1, batchSize: 1, pollInterval: .milliseconds(5), drainTimeout: .seconds(5))
            ) { _ in
                // Down for the first five tries: more than maxAttempts.
                if outage.add(1, ordering: .relaxed).newValue <= 5 {
                    throw DependencyUnavailable(retryAfter: .milliseconds(10), reason: "database down")
                }
            }
            let running = Task { try await worker.run() }
            _ = try await eventually(attempts: 1000) { try await queue.stats().completed == 1 }
            worker.stop()
            try await running.value
            let stats = try await queue.stats()
            #expect(stats.completed == 1)
            #expect(stats.deadLettered == 0 && stats.failed == 0)
            #expect(try await queue.record(of: "needs-db")?.attempts == 1)
        }
    }

    /// Keeps the lines logged through it, each with the trace it was logged in.
    final class LogRecorder: Sendable {
        struct Line {
            var level: Logger.Level
            var message: String
            var metadata: Logger.Metadata
            var traceParent: String?
        }
        let lines = Mutex<[Line]>([])

        var logger: Logger {
            Logger(label: "test") { _ in Handler(recorder: self) }
        }

        struct Handler: LogHandler {
            let recorder: LogRecorder
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                let line = Line(level: event.level, message: event.message.description, metadata: event.metadata ?? [:],
                                traceParent: ServiceContext.currentTraceParent)
                recorder.lines.withLock { $0.append(line) }
            }
        }
    }

    @Test("with Redis unreachable a worker says so once per outage, not once per poll")
    func unreachableQueueBacksOff() async throws {
        let recorder = LogRecorder()
        try await TestRedis.withClient(url: "redis://127.0.0.1:\(RedisClientTests.closedPort)") { redis async throws in
            let queue = JobQueue(name: "unreachable-\(UUID().uuidString)", redis: redis)
            let worker = JobWorker(
                queue: queue, configuration: .init(concurrency: 1, batchSize: 1, pollInterval: .milliseconds(5), drainTimeout: .seconds(1)),
                logger: recorder.logger
            ) { _ in }
            let running = Task { try await worker.run() }
            // Waits of 25, 50, 100 and 200 ms: five failed claims take about 0.4 s.
            #expect(try await eventually(attempts: 500) { worker.claimFailures >= 5 })
            worker.stop()
            try await running.value
            let warnings = recorder.lines.withLock { $0.filter { $0.level == .warning }.map(\.message) }
            #expect(warnings == ["claiming from the queue failed; retrying with backoff"], "one warning for the outage")
        }
    }

    @Test("graceful stop releases jobs still running after the drain timeout, uncounted")
    func gracefulStopReleases() async throws {
        try await Self.withQueue { queue async throws in
            try await queue.enqueue((0..<4).map { NewJob(id: "long\($0)", payload: []) })
            let started = Atomic<Int>(0)
            let worker = JobWorker(
                queue: queue,
                configuration: .init(concurrency: 4, batchSize: 4, pollInterval: .milliseconds(5), drainTimeout: .milliseconds(100))
            ) { _ in
                started.add(1, ordering: .relaxed)
                try await Task.sleep(for: .seconds(60))
            }
            let running = Task { try await worker.run() }
            while started.load(ordering: .relaxed) < 4 { try await Task.sleep(for: .milliseconds(5)) }
            worker.stop()
            try await running.value
            let stats = try await queue.stats()
            #expect(stats.waiting == 4)
            #expect(stats.active == 0)
            let again = try await queue.claim(max: 4)
            #expect(again.allSatisfy { $0.attempt == 1 }, "a released attempt does not count")
        }
    }

    @Test("Redis killed mid-load loses no acknowledged job (AOF, fsync always)")
    func redisCrashKeepsAcknowledgedJobs() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await Self.withQueue(url: isolated.endpoints.redisURL) { queue async throws in
            let acknowledged = Acknowledged()
            try await withThrowingTaskGroup(of: Void.self) { producers in
                for producer in 0..<4 {
                    producers.addTask { [queue] in
                        for batch in 0..<150 {
                            let jobs = (0..<10).map { NewJob(id: "p\(producer)-\(batch)-\($0)", payload: []) }
                            if let added = try? await queue.enqueue(jobs) {
                                acknowledged.ids.withLock { $0.formUnion(added) }
                            } else {
                                try await Task.sleep(for: .milliseconds(20))
                            }
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(150))
                let pid = try String(contentsOf: isolated.stateDirectory.appendingPathComponent("redis/redis.pid"), encoding: .utf8)
                kill(pid_t(pid.trimmingCharacters(in: .whitespacesAndNewlines))!, SIGKILL)
                try await Task.sleep(for: .milliseconds(100))
                try await isolated.start(.redis)
                try await producers.waitForAll()
            }
            let expected = acknowledged.ids.withLock { $0 }
            #expect(expected.count > 0)
            var claimed = Set<String>()
            while true {
                let batch = try await queue.claim(max: 1000)
                if batch.isEmpty { break }
                claimed.formUnion(batch.map(\.id))
            }
            #expect(expected.subtracting(claimed).isEmpty, "acknowledged but lost: \(expected.subtracting(claimed).count)")
        }
    }
}

struct ProviderError: Error {}

/// Ids whose enqueue returned: the ones that must never be lost.
final class Acknowledged: Sendable {
    let ids = Mutex<Set<String>>([])
}

extension FileHandle {
    /// Reads up to the first newline (blocking; tests only).
    func availableLine() -> String {
        var bytes: [UInt8] = []
        while true {
            let chunk = readData(ofLength: 1)
            guard let byte = chunk.first, byte != UInt8(ascii: "\n") else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
