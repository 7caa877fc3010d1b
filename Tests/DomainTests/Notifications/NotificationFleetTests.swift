import Foundation
import NIOPosix
import Storage
import TestSupport
import Testing

@testable import Domain

/// Two instances (each its own workers, Redis client and pool) sending 1,000 messages to 200
/// destinations through `webhook_sim.py`, one of them stopped mid-run: every message
/// arrives, and the arrivals keep the global and per-destination limits.
@Suite("Notification fleet", .serialized)
struct NotificationFleetTests {
    static let globalRate = 40.0
    static let messageCount = 1000
    static let destinations = 200

    /// The limits are decided on Redis' clock when a send is allowed; the sink stamps the
    /// payload's `sent_at` a task resumption later, and the simulator stamps the arrival after
    /// the whole send path (connection pool, HTTP exchange, the simulator's thread start), which
    /// varied by up to a quarter of a second with the whole suite running on two cores. So the
    /// limits are checked on `sent_at`, and this is the variation allowed for between a
    /// decision and its stamp: a limiter letting more through would put whole extra sends into
    /// a window, and a per-destination spacing broken by a retry or a second instance would
    /// show as sends far less than a second apart.
    static let stampJitter = 0.15

    @Test("1,000 messages to 200 destinations over two instances, one stopped mid-run: all arrive within the limits")
    func fleet() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let simulator = try await WebhookSimulatorProcess.start(secret: "fleet-secret")
            do {
                try await run(database: database, redis: redis, namespace: namespace, simulator: simulator)
            } catch {
                await simulator.stop()
                throw error
            }
            await simulator.stop()
        }
    }

    func run(database: PostgresDatabase, redis: RedisClient, namespace: String, simulator: WebhookSimulatorProcess) async throws {
        let configuration = NotificationsHarness.configuration {
            $0.ratePerDestinationPerSecond = 1
            $0.globalRatePerSecond = Self.globalRate
            $0.sink = .webhook(url: simulator.url, secret: simulator.secret, timeout: .seconds(2))
        }
        let group = MultiThreadedEventLoopGroup.singleton
        // Five messages per destination in a seeded shuffle: a destination's messages often
        // come close together, so its 1/s limit binds now and then, while the global one
        // binds all along.
        var random = SplitMix64(seed: 15)
        let destinations = (0..<Self.messageCount).map { $0 % Self.destinations }.shuffled(using: &random)
        let messages = destinations.enumerated().map { index, destination in
            NotificationMessage(id: "fleet-\(index)", destination: "user-\(destination)", kind: "quiz.reward", body: #"{"points": \#(index)}"#)
        }
        // One destination is throttled three times, for a second each: its pause must hold on
        // both instances.
        try await simulator.control(#"{"mode": "throttle", "count": 3, "retry_after": 1, "destination": "user-100"}"#)

        let second = PostgresDatabase(primary: database.primary.configuration)
        try await TestRedis.withClient { otherRedis in
            let stopped = NotificationsHarness.make(database, redis, namespace, sink: configuration.sink.make(group: group), configuration: configuration)
            let survivor = NotificationsHarness.make(second, otherRedis, namespace, sink: configuration.sink.make(group: group), configuration: configuration)
            try await NotificationsHarness.running(survivor) { () async throws in
                try await NotificationsHarness.send(messages, via: stopped, database: database)
                try await runUntilStopped(stopped, after: 300, simulator: simulator)
                #expect(try await Self.seldom { try await survivor.statistics.delivered == Int64(Self.messageCount) })
            }
            await stopped.shutdown()
            await survivor.shutdown()
        }
        await second.shutdown()

        let stats = try await simulator.stats()
        // Nothing lost: every message was answered 2xx at least once.
        #expect(Set(stats.delivered.keys) == Set(messages.map(\.id)))
        #expect(stats.invalidSignatures == 0)
        check(stats.arrivals)
    }

    /// Runs `instance`'s workers until the simulator has seen `arrivals`, then stops them
    /// mid-run (cancelled: running sends are abandoned and their jobs released).
    func runUntilStopped(_ instance: Notifications, after arrivals: Int, simulator: WebhookSimulatorProcess) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await NotificationsHarness.running(instance) { () async throws in try await Task.sleep(for: .seconds(3600)) }
            }
            let reached = try await Self.seldom { try await simulator.stats().total >= arrivals }
            #expect(reached)
            group.cancelAll()
            _ = try? await group.next()
        }
    }

    /// `eventually`, asking every 250 ms for up to two minutes: asking every 20 ms would load
    /// Redis, Postgres and the simulator enough to slow the run it measures.
    static func seldom(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<480 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return false
    }

    func check(_ arrivals: [WebhookSimulatorProcess.Arrival]) {
        let sends = arrivals.compactMap { arrival in arrival.sentAt.map { (arrival, sentAt: $0) } }.sorted { $0.sentAt < $1.sentAt }
        #expect(sends.count == arrivals.count, "\(arrivals.count - sends.count) arrivals without sent_at")
        let times = sends.map(\.sentAt)
        guard times.count > 1 else { return }
        let limit = Int(Self.globalRate)

        // Global: at most `limit` sends in any window of one second less the jitter.
        var most = 0, mostInFullSecond = 0, start = 0, startFull = 0
        for end in times.indices {
            while times[end] - times[start] >= 1 - Self.stampJitter { start += 1 }
            while times[end] - times[startFull] >= 1 { startFull += 1 }
            most = max(most, end - start + 1)
            mostInFullSecond = max(mostInFullSecond, end - startFull + 1)
        }
        #expect(most <= limit, "\(most) sends within \(1 - Self.stampJitter) s; the limit is \(limit)/s")
        // Over the whole run the jitter is one allowance, not one per window: k * limit + 1
        // sends need k whole windows.
        let span = times.last! - times.first!
        #expect(Double((times.count - 1) / limit) <= span + Self.stampJitter)

        // Per destination: consecutive sends at least a second apart (less the jitter), and
        // after a 429 nothing to that destination for its retry_after (1 s).
        var last: [String: Double] = [:]
        var closest = Double.infinity
        for (arrival, sentAt) in sends {
            if let previous = last[arrival.destination] { closest = min(closest, sentAt - previous) }
            last[arrival.destination] = sentAt
        }
        #expect(closest >= 1 - Self.stampJitter, "two sends to one destination \(closest) s apart")
        #expect(arrivals.filter { $0.status == 429 }.count == 3)
        // How long the send path took (printed: the reason the limits are checked on sent_at).
        let slowestPath = sends.map { $0.0.time - $0.sentAt }.max() ?? 0

        // The sent rate against the configured one (printed, not asserted: no wall-clock asserts):
        // over the whole run, and over its middle 80%, without the start and the tail (where
        // the last destinations' own 1/s limits, not the global one, set the pace).
        let delivered = arrivals.filter { $0.status == 200 }.count
        let low = times.count / 10, high = times.count * 9 / 10
        let middleRate = Double(high - low) / (times[high] - times[low])
        print("""
            notification fleet: \(arrivals.count) arrivals (\(delivered) delivered) in \(String(format: "%.2f", span)) s: \
            \(String(format: "%.2f", Double(arrivals.count - 1) / span))/s sent against \(Self.globalRate)/s configured \
            (\(String(format: "%.1f", 100 * Double(arrivals.count - 1) / span / Self.globalRate))%), middle 80% \
            \(String(format: "%.2f", middleRate))/s (\(String(format: "%.1f", 100 * middleRate / Self.globalRate))%); \
            most sent in any 1 s window \(mostInFullSecond), in any \(1 - Self.stampJitter) s window \(most); \
            closest per destination \(String(format: "%.3f", closest)) s; slowest send to arrival \
            \(String(format: "%.3f", slowestPath)) s; resent \(arrivals.count - Set(arrivals.map(\.id)).count)
            """)
    }
}
