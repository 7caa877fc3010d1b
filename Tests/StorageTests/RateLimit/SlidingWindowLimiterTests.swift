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
                    #expect(next.retryAfter > .seconds(50) && next.retryAfter <= .seconds(60))
                }
            }
        }
    }

    @Test("a request is accepted again once the oldest accepted one has left the window")
    func slides() async throws {
        try await TestRedis.withClient { redis async throws in
            let limiter = SlidingWindowLimiter(redis: redis, keyPrefix: "test-limit", fallback: .local, instanceCount: 1, logger: Logger(label: "test"))
            let key = "customer-\(UUID().uuidString)"
            let limit = RateLimit(limit: 3, period: .milliseconds(400))
            for expected in [2, 1, 0] {
                let decision = try await limiter.decide(key: key, limit: limit)
                #expect(decision.allowed && decision.remaining == expected)
            }
            let refused = try await limiter.decide(key: key, limit: limit)
            #expect(!refused.allowed)
            try await Task.sleep(for: refused.retryAfter + .milliseconds(20))
            #expect(try await limiter.decide(key: key, limit: limit).allowed)
        }
    }

    @Test("with Redis unreachable it falls back to a local share, or refuses")
    func fallback() async throws {
        try await TestRedis.withClient(url: "redis://127.0.0.1:1") { redis async throws in
            let local = SlidingWindowLimiter(redis: redis, keyPrefix: "test-limit", fallback: .local, instanceCount: 4, logger: Logger(label: "test"))
            var accepted = 0
            for _ in 0..<20 where try await local.decide(key: "k", limit: .perMinute(40)).allowed { accepted += 1 }
            #expect(accepted == 10)  // 40 / 4 instances
            #expect(local.isDegraded && local.mode == "local")

            let refusing = SlidingWindowLimiter(redis: redis, keyPrefix: "test-limit", fallback: .refuse, instanceCount: 4, logger: Logger(label: "test"))
            await #expect(throws: RedisError.self) { try await refusing.decide(key: "k", limit: .perMinute(40)) }
            #expect(refusing.mode == "refuse")
        }
    }
}
