import TestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import Storage

@Suite("Distributed rate limiter")
struct RateLimiterTests {
    static func withLimiter<T>(
        url: String = TestServices.shared.redisURL, instanceCount: Int = 1,
        _ body: (RateLimiter) async throws -> T
    ) async throws -> T {
        try await TestRedis.withClient(url: url, { $0.maxReconnectDelay = .milliseconds(100) }) { redis async throws in
            try await body(RateLimiter(redis: redis, instanceCount: instanceCount))
        }
    }

    @Test("a burst gets exactly the limit, then RESOURCE_EXHAUSTED with retry-after")
    func burst() async throws {
        try await Self.withLimiter { limiter async throws in
            let key = "customer-\(UUID().uuidString)"
            let limit = RateLimit(limit: 20, period: .seconds(3600))
            var decisions: [RateLimitDecision] = []
            for _ in 0..<25 { decisions.append(await limiter.decide(key: key, limit: limit)) }
            #expect(decisions.prefix(20).allSatisfy { $0.allowed })
            #expect(decisions.prefix(20).map(\.remaining) == Array((0..<20).reversed()))
            #expect(decisions.suffix(5).allSatisfy { !$0.allowed })
            let denied = decisions[24]
            // One request returns every 3600 s / 20 = 180 s.
            #expect(denied.retryAfter > .zero && denied.retryAfter <= .seconds(180))
            #expect(!denied.decidedLocally)
            #expect((1...180_000).contains(denied.retryAfter.milliseconds))
            #expect(!limiter.isDegraded)
        }
    }

    @Test("a batch of keys (one script call per shard) decides each key as single calls would, a repeated key included")
    func batch() async throws {
        try await Self.withLimiter { limiter async throws in
            let run = UUID().uuidString
            let limit = RateLimit(limit: 3, period: .seconds(3600))
            // 40 keys over the 16 shards, the first one asked for 4 times in the same batch.
            var requests = (0..<40).map { (key: "batch-\(run)-\($0)", cost: 1) }
            requests += Array(repeating: (key: "batch-\(run)-0", cost: 1), count: 3)
            let decisions = await limiter.decide(requests, limit: limit)
            #expect(decisions.count == 43)
            #expect(decisions.prefix(40).allSatisfy { $0.allowed && $0.remaining == 2 })
            #expect(decisions.suffix(3).map(\.allowed) == [true, true, false])
            #expect(decisions.suffix(3).map(\.remaining) == [1, 0, 0])
            // The same keys decided singly afterwards see the batch's spending.
            #expect(await limiter.decide(key: "batch-\(run)-1", limit: limit).remaining == 1)
            #expect(await limiter.decide(key: "batch-\(run)-0", limit: limit).allowed == false)
        }
    }

    @Test("keys whose time has passed are swept from their shard's hash by later decisions")
    func sweep() async throws {
        try await TestRedis.withClient { redis async throws in
            let limiter = RateLimiter(redis: redis, keyPrefix: "rl-sweep-\(UUID().uuidString.prefix(8))", shards: 1)
            let hash = RedisArgument(limiter.storage(of: "any").hash)
            // 60 keys last used long ago (TAT 1 us after the epoch): as good as absent.
            var stale: [RedisArgument] = []
            for index in 0..<60 { stale += [RedisArgument("old-\(index)"), RedisArgument(1)] }
            try await redis.send(RedisCommand("HSET", [hash] + stale))
            let limit = RateLimit(limit: 5, period: .seconds(3600))
            #expect(await limiter.decide(key: "old-7", limit: limit).remaining == 4)  // a passed TAT is a fresh budget
            #expect(await limiter.decide(key: "live", limit: limit).allowed)
            let fields = try await redis.send(RedisCommand("HKEYS", hash)).array?.compactMap(\.string) ?? []
            #expect(Set(fields) == ["old-7", "live"])
            // Kept at least until the latest TAT (one request every 720 s) has passed.
            #expect(try await redis.send(RedisCommand("PTTL", hash)).int ?? 0 > 720_000)
            try await redis.send(RedisCommand("DEL", hash))
        }
    }

    @Test("concurrent single decisions on an event loop are batched and still exact")
    func coalescedOnLoop() async throws {
        try await Self.withLimiter { limiter async throws in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let executor = LoopExecutor(loop: group.next())
            let key = "coalesced-\(UUID().uuidString)"
            let limit = RateLimit(limit: 50, period: .seconds(86_400))
            let before = limiter.redisRoundTrips
            // The callers are added from a task on the loop itself, so every one of them is
            // queued on the loop before any runs: they all ask in the same pass.
            let allowed = await withTaskExecutorPreference(executor) {
                await withTaskGroup(of: Int.self) { tasks in
                    for caller in 0..<200 {
                        tasks.addTask(executorPreference: executor) {
                            // Half on the shared key, half on keys of their own.
                            let own = caller % 2 == 1 ? "\(key)-\(caller)" : key
                            return await limiter.decide(key: own, limit: limit).allowed ? 1 : 0
                        }
                    }
                    return await tasks.reduce(0, +)
                }
            }
            #expect(allowed == 50 + 100)
            #expect(limiter.redisRoundTrips - before == 1, "200 decisions of one pass, one batched write")
            try await group.shutdownGracefully()
        }
    }

    @Test("capacity returns at the configured rate (time moved forward in the stored state)")
    func refill() async throws {
        try await TestRedis.withClient { redis async throws in
            let limiter = RateLimiter(redis: redis, keyPrefix: "rl-test")
            let key = "refill-\(UUID().uuidString)"
            let limit = RateLimit(limit: 2, period: .seconds(120))  // one every 60 s
            #expect(await limiter.decide(key: key, limit: limit).allowed)
            #expect(await limiter.decide(key: key, limit: limit).allowed)
            let denied = await limiter.decide(key: key, limit: limit)
            #expect(denied.allowed == false)
            #expect(denied.retryAfter > .zero && denied.retryAfter <= .seconds(60))
            // Pretend 61 s passed: move the key's theoretical arrival time back (the machine is
            // too noisy for tests that depend on real sleeps being short).
            let stored = limiter.storage(of: key)
            let tat = try #require(try await redis.send(RedisCommand("HGET", RedisArgument(stored.hash), RedisArgument(stored.field))).int)
            try await redis.send(RedisCommand("HSET", RedisArgument(stored.hash), RedisArgument(stored.field), RedisArgument(tat - 61_000_000)))
            #expect(await limiter.decide(key: key, limit: limit).allowed)
            #expect(await limiter.decide(key: key, limit: limit).allowed == false)
        }
    }

    @Test("three processes hammering one key are allowed exactly the limit in total")
    func exactAcrossProcesses() async throws {
        let bench = TestServices.repositoryRoot.appendingPathComponent(".build/debug/StorageBench")
        try #require(FileManager.default.isExecutableFile(atPath: bench.path), "build StorageBench first (swift build)")
        let key = "exact-\(UUID().uuidString)"
        let redisURL = TestServices.shared.redisURL
        let outputs = try await TestServices.offCooperativePool { () throws -> [(Int32, String)] in
            let processes = (0..<3).map { _ in
                let process = Process()
                process.executableURL = bench
                process.arguments = ["rate-limit-hammer", "--key", key, "--limit", "500", "--period-seconds", "86400",
                                     "--attempts", "1024", "--concurrency", "64"]
                var environment = ProcessInfo.processInfo.environment
                environment["REDIS_URL"] = redisURL
                process.environment = environment
                let pipe = Pipe()
                process.standardOutput = pipe
                return (process, pipe)
            }
            for (process, _) in processes { try process.run() }
            return processes.map { process, pipe in
                let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                return (process.terminationStatus, output)
            }
        }
        var allowed = 0
        for (status, output) in outputs {
            #expect(status == 0)
            #expect(!output.contains("degraded"))
            allowed += Int(output.split(separator: " ").dropFirst().first ?? "") ?? -10_000
        }
        // 3 x 1024 attempts against 500 per day: one request refills every 172.8 s, so the
        // few seconds of the run add nothing: exactly 500.
        #expect(allowed == 500)
    }

    @Test("with Redis down, a local limiter takes over with the limit divided by the instances")
    func fallback() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await Self.withLimiter(url: isolated.endpoints.redisURL, instanceCount: 4) { limiter async throws in
            let limit = RateLimit(limit: 40, period: .seconds(3600))
            #expect(await limiter.decide(key: "warm", limit: limit).allowed)
            try await isolated.stop(.redis)
            var allowed = 0
            for _ in 0..<20 {
                let decision = await limiter.decide(key: "fallback", limit: limit)
                #expect(decision.decidedLocally)
                if decision.allowed { allowed += 1 }
            }
            #expect(allowed == 10)
            #expect(limiter.isDegraded)
            try await isolated.start(.redis)
            var back = false
            for _ in 0..<100 where !back {
                back = await !limiter.decide(key: "back", limit: limit).decidedLocally
                if !back { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(back)
            #expect(!limiter.isDegraded)
        }
    }

    @Test("the local limiter alone: GCRA on the monotonic clock")
    func localLimiter() {
        let local = LocalRateLimiter()
        let limit = RateLimit(limit: 3, period: .seconds(3))
        let start = ContinuousClock.now
        let burst = (0..<4).map { _ in local.decide(key: "k", limit: limit, cost: 1, now: start).allowed }
        #expect(burst == [true, true, true, false])
        #expect(local.decide(key: "k", limit: limit, cost: 1, now: start + .milliseconds(999)).allowed == false)
        #expect(local.decide(key: "k", limit: limit, cost: 1, now: start + .seconds(1)).allowed)
        #expect(local.decide(key: "other", limit: limit, cost: 3, now: start).allowed)
    }
}

/// Runs tasks on an event loop, as the server runs RPC handlers (so a limiter's callers are
/// on the loop and its decisions are batched per loop pass).
final class LoopExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
