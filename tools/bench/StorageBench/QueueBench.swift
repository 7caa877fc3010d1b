import ArgumentParser
import Domain
import Storage
import Foundation
import NIOPosix

/// Jobs per second through enqueue -> claim -> complete, with batched enqueues, batched claims
/// and batched completions, against the Redis of REDIS_URL.
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Job queue: jobs/s through enqueue -> claim -> complete.")

    // With `appendfsync always` every Redis event-loop turn that writes waits for one fsync
    // (~4 ms on the CI disk), so throughput comes from how many jobs each turn carries: enough
    // producers and workers in flight that a turn holds thousands of enqueues, claims and
    // completions (4 x 256 with claims of 200 leaves Redis idle in fsync for a third of the run).
    @Option(help: "Jobs to push through.") var jobs = 200_000
    @Option(help: "Jobs per enqueue call.") var enqueueBatch = 500
    @Option(help: "Concurrent producers.") var producers = 16
    @Option(help: "Workers (each claims in batches).") var workers = 8
    @Option(help: "Concurrency per worker.") var concurrency = 1024
    @Option(help: "Most jobs per claim.") var claimBatch = 1000
    @Option(help: "Event loops.") var threads = 1

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL()), group: group)
        let queue = JobQueue(name: "bench-\(UUID().uuidString.prefix(8))", redis: redis)
        let payload = Array(repeating: UInt8(ascii: "x"), count: 64)
        let workerConfiguration = JobWorker.Configuration(
            concurrency: concurrency, batchSize: claimBatch, pollInterval: .milliseconds(2), drainTimeout: .seconds(5))
        let pool = (0..<workers).map { _ in JobWorker(queue: queue, configuration: workerConfiguration) { _ in } }

        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for worker in pool { tasks.addTask { try await worker.run() } }
            let perProducer = jobs / producers
            try await withThrowingTaskGroup(of: Void.self) { producing in
                for producer in 0..<producers {
                    producing.addTask {
                        var next = 0
                        while next < perProducer {
                            let count = min(enqueueBatch, perProducer - next)
                            try await queue.enqueue((next..<next + count).map { NewJob(id: "\(producer)-\($0)", payload: payload) })
                            next += count
                        }
                    }
                }
                try await producing.waitForAll()
            }
            let enqueued = ContinuousClock.now - started
            let total = perProducer * producers
            while try await queue.stats().completed < total {
                try await Task.sleep(for: .milliseconds(50))
            }
            let elapsed = ContinuousClock.now - started
            for worker in pool { worker.stop() }
            try await tasks.waitForAll()
            print(String(format: "queue: %d jobs enqueued in %.2f s (%.0f/s); enqueue -> claim -> complete of all in %.2f s = %.0f jobs/s (%d workers x %d, claims of %d)",
                         total, enqueued.inSeconds, Double(total) / enqueued.inSeconds, elapsed.inSeconds, Double(total) / elapsed.inSeconds,
                         workers, concurrency, claimBatch))
            let stats = try await queue.stats()
            print(String(format: "queue stats: completed %d, failed %d, waiting %d, mean processing %.2f ms", stats.completed, stats.failed, stats.waiting,
                         stats.meanProcessingTime.inSeconds * 1000))
        }
        try await redis.send(RedisCommand("EVAL", RedisArgument("for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end"),
                                          0, RedisArgument("{q:\(queue.name)}*")))
        await redis.shutdown()
        try await group.shutdownGracefully()
    }
}

/// Claims jobs and holds them without ever finishing, for the test that kills a worker
/// process: prints "holding N" once the claim is made, then sleeps.
struct QueueHold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue-hold", abstract: "Claim jobs and never finish them.")

    @Option(help: "Queue name.") var queue: String
    @Option(help: "Lease in milliseconds.") var leaseMs: Int
    @Option(help: "Jobs to claim.") var jobs: Int

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL()), group: group)
        var configuration = JobQueueConfiguration.defaults
        configuration.leaseTimeout = .milliseconds(leaseMs)
        let claimed = try await JobQueue(name: queue, redis: redis, configuration: configuration).claim(max: jobs)
        // Straight to the pipe: print's buffer would hold the line until exit.
        FileHandle.standardOutput.write(Data("holding \(claimed.count)\n".utf8))
        try await Task.sleep(for: .seconds(3600))
    }
}
