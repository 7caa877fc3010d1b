import ArgumentParser
import Codec
import Domain
import Storage
import Foundation
import NIOPosix

/// Rate limiter decisions per second from one process (concurrent callers on the event
/// loops, so decisions share pipelined writes), against the Redis of REDIS_URL.
struct RateLimitBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rate-limit", abstract: "Distributed rate limiter: decisions/s from one process.")

    @Option(help: "Decisions to make.") var decisions = 300_000
    @Option(help: "Concurrent callers (as many RPCs in flight on one instance; with `appendfsync always` each Redis write pass waits for an fsync, ~5 ms on this disk, so throughput is what one pass carries).") var concurrency = 1024
    @Option(help: "Distinct keys (customers).") var keys = 10_000
    @Option(help: "Event loops.") var threads = 1
    @Option(help: "Keys decided per call (1: one script call each; more: one pipelined write per call, as for an event batch's users).")
    var batch = 1

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL()), group: group)
        let limiter = RateLimiter(redis: redis)
        let limit = RateLimit.perMinute(1_000_000)
        let prefix = "bench:\(UUID().uuidString.prefix(8)):"
        _ = await limiter.decide(key: prefix + "warmup", limit: limit)  // loads the script

        let perCaller = decisions / concurrency
        // Callers run on the loops' task executors, as RPC handlers do in the server.
        let executors = group.makeIterator().map { EventLoopTaskExecutor(eventLoop: $0) }
        let started = ContinuousClock.now
        let allowed = await withTaskGroup(of: Int.self) { tasks in
            for caller in 0..<concurrency {
                tasks.addTask(executorPreference: executors[caller % executors.count]) {
                    var allowed = 0
                    var index = 0
                    while index < perCaller {
                        if batch == 1 {
                            let key = prefix + String((caller &* 7919 &+ index) % keys)
                            if await limiter.decide(key: key, limit: limit).allowed { allowed += 1 }
                            index += 1
                        } else {
                            let requests = (index..<min(perCaller, index + batch)).map {
                                (key: prefix + String((caller &* 7919 &+ $0) % keys), cost: 1)
                            }
                            allowed += await limiter.decide(requests, limit: limit).filter(\.allowed).count
                            index += requests.count
                        }
                    }
                    return allowed
                }
            }
            return await tasks.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = elapsed.inSeconds
        let made = perCaller * concurrency
        print(String(format: "rate-limit: %d decisions (%d allowed) in %.2f s = %.0f decisions/s (%d callers, %d loop%@, %d keys per call)%@",
                     made, allowed, seconds, Double(made) / seconds, concurrency, threads, threads == 1 ? "" : "s", batch,
                     limiter.isDegraded ? " DEGRADED: Redis unreachable" : ""))
        await redis.shutdown()
        try await group.shutdownGracefully()
    }
}

/// Concurrent decisions on ONE key from this process, for the cross-process exactness test:
/// prints how many were allowed.
struct RateLimitHammer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rate-limit-hammer", abstract: "Spend one key's budget concurrently; print the allowed count.")

    @Option(help: "The key to spend.") var key: String
    @Option(help: "Requests allowed per period.") var limit: Int
    @Option(help: "Period in seconds.") var periodSeconds: Int
    @Option(help: "Attempts to make.") var attempts = 2000
    @Option(help: "Concurrent callers.") var concurrency = 64

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL()), group: group)
        let limiter = RateLimiter(redis: redis)
        let rule = RateLimit(limit: limit, period: .seconds(periodSeconds))
        let perCaller = attempts / concurrency
        // On the loop's task executor, as RPC handlers run: decisions are batched per loop pass.
        let executor = EventLoopTaskExecutor(eventLoop: group.next())
        let allowed = await withTaskGroup(of: Int.self) { tasks in
            for _ in 0..<concurrency {
                tasks.addTask(executorPreference: executor) {
                    var allowed = 0
                    for _ in 0..<perCaller where await limiter.decide(key: key, limit: rule).allowed { allowed += 1 }
                    return allowed
                }
            }
            return await tasks.reduce(0, +)
        }
        print("allowed \(allowed) of \(perCaller * concurrency)\(limiter.isDegraded ? " (degraded)" : "")")
        await redis.shutdown()
        try await group.shutdownGracefully()
    }
}

func redisURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["REDIS_URL"] else {
        throw ValidationError("REDIS_URL is not set (source .tally/services.env after tools/services.sh start)")
    }
    return url
}
