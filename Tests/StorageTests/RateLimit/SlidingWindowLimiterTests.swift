import TestSupport
import Foundation
import Logging
import Testing

@testable import Storage

@Suite("Sliding-window limiter")
struct SlidingWindowLimiterTests {
    @Test("three instances sharing 250 calls of one customer within the window accept exactly 200")
    func exactAcrossInstances() async throws {
        let key = "customer-\(UUID().uuidString)"
        try await TestRedis.withClient { a async throws in
            try await TestRedis.withClient { b async throws in
                try await TestRedis.withClient { c async throws in
                    let limiters = [a, b, c].map {
                        SlidingWindowLimiter(redis: $0, keyPrefix: "test-limit", fallback: .local, instanceCount: 3, logger: Logger(label: "test"))
                    }
                    let accepted = await withTaskGroup(of: Bool.self) { group in
                        for call in 0..<250 {
                            group.addTask { (try? await limiters[call % 3].decide(key: key, limit: .perMinute(200)))?.allowed ?? false }
                        }
                        return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                    }
                    #expect(accepted == 200)
                    let next = try await limiters[0].decide(key: key, limit: .perMinute(200))
                    #expect(!next.allowed && next.remaining == 0)
                    #expect(next.retryAfter > .zero && next.retryAfter <= .seconds(60))
                }
            }
        }
    }

    @Test("requests older than the window no longer count; younger ones do")
    func slides() async throws {
        try await TestRedis.withClient { redis async throws in
            let limiter = SlidingWindowLimiter(redis: redis, keyPrefix: "test-limit", fallback: .local, instanceCount: 1, logger: Logger(label: "test"))
            let key = "customer-\(UUID().uuidString)"
            // Two accepted requests of a minute ago and one of a second ago, on Redis' clock:
            // however slow this machine, the first two are out of the window and the last in.
            let time = try await redis.send(RedisCommand("TIME")).array ?? []
            let now = Int64(time[0].string ?? "0")! * 1_000_000 + Int64(time[1].string ?? "0")!
            _ = try await redis.send(RedisCommand("ZADD", RedisArgument("test-limit:{\(key)}"),
                                                  RedisArgument(now - 61_000_000), "old-1", RedisArgument(now - 65_000_000), "old-2",
                                                  RedisArgument(now - 1_000_000), "recent"))
            let limit = RateLimit.perMinute(2)
            let accepted = try await limiter.decide(key: key, limit: limit)
            #expect(accepted.allowed && accepted.remaining == 0)
            let refused = try await limiter.decide(key: key, limit: limit)
            #expect(!refused.allowed)
            // It comes back when "recent" leaves the window: about 59 s from now.
            #expect(refused.retryAfter > .seconds(30) && refused.retryAfter <= .seconds(60))
        }
    }

    @Test("with Redis unreachable it falls back to a local share, or refuses")
    func fallback() async throws {
        try await TestRedis.withClient(url: "redis://127.0.0.1:1") { redis async throws in
            let local = SlidingWindowLimiter(redis: redis, keyPrefix: "test-limit", fallback: .local, instanceCount: 4, logger: Logger(label: "test"))
            var accepted = 0
            // Per hour: nothing refills while the test runs, however slow the machine.
            let hourly = RateLimit(limit: 40, period: .seconds(3600))
            for _ in 0..<20 where try await local.decide(key: "k", limit: hourly).allowed { accepted += 1 }
            #expect(accepted == 10)  // 40 / 4 instances
            #expect(local.isDegraded && local.mode == "local")

            let refusing = SlidingWindowLimiter(redis: redis, keyPrefix: "test-limit", fallback: .refuse, instanceCount: 4, logger: Logger(label: "test"))
            await #expect(throws: RedisError.self) { try await refusing.decide(key: "k", limit: hourly) }
            #expect(refusing.mode == "refuse")
        }
    }
}
