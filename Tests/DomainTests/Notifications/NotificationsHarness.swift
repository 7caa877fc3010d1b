import Foundation
import Logging
import Storage
import Synchronization
import TestSupport

@testable import Domain

/// Notifications on a database of their own and a namespace of their own in the run's Redis,
/// so tests running in parallel never take each other's jobs or share limits.
enum NotificationsHarness {
    static func configuration(_ adjust: (inout NotificationsConfiguration) -> Void = { _ in }) -> NotificationsConfiguration {
        var configuration = NotificationsConfiguration.defaults
        // Fast retries and sweeps: the tests wait for outcomes, not for defaults.
        configuration.retryBase = .milliseconds(20)
        configuration.retryMax = .milliseconds(100)
        configuration.sweepInterval = .milliseconds(100)
        configuration.ratePerDestinationPerSecond = 1000
        configuration.globalRatePerSecond = 1000
        adjust(&configuration)
        return configuration
    }

    /// `body` gets the database (migrated), a Redis client and a fresh namespace.
    static func withStores<T>(_ body: (PostgresDatabase, RedisClient, String) async throws -> T) async throws -> T {
        let testDatabase = try await TestDatabase.create()
        let database = PostgresDatabase(primary: testDatabase.configuration(max: 8))
        do {
            _ = try await Migrator(pool: database.primary).migrate()
            let namespace = "notify-test-\(UUID().uuidString.prefix(8))"
            let result = try await TestRedis.withClient { redis in try await body(database, redis, namespace) }
            await database.shutdown()
            await testDatabase.drop()
            return result
        } catch {
            await database.shutdown()
            await testDatabase.drop()
            throw error
        }
    }

    static func make(_ database: PostgresDatabase, _ redis: RedisClient, _ namespace: String, sink: any NotificationSink,
                     configuration: NotificationsConfiguration) -> Notifications {
        Notifications(database: database, redis: redis, sink: sink, configuration: configuration, namespace: namespace,
                      logger: Logger(label: "test.notifications"))
    }

    /// Runs the instance's workers and sweeper around `body`, then cancels them (a cancelled
    /// worker releases its jobs, as an instance stopping does).
    static func running<T>(_ notifications: Notifications, _ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in notifications.services {
                group.addTask { try await service.run() }
            }
            do {
                let result = try await body()
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// Records the messages in one transaction and dispatches them after it, as a domain does.
    static func send(_ messages: [NotificationMessage], via notifications: Notifications, database: PostgresDatabase) async throws {
        try await database.withTransaction { try await Notifications.record(messages, on: $0) }
        await notifications.dispatch(messages)
    }

    static func row(_ id: String, _ database: PostgresDatabase) async throws -> (status: String, attempts: Int, lastError: String?)? {
        try await database.withConnection { connection in
            let rows = try await connection.query("SELECT status, attempts, last_error FROM notifications WHERE id = $1", [id])
            guard let row = rows.first else { return nil }
            return (try row.decode(0), try row.decode(1), try row.decode(2))
        }
    }

    static func messages(_ count: Int, destinations: Int, prefix: String = "m") -> [NotificationMessage] {
        (0..<count).map { index in
            NotificationMessage(id: "\(prefix)-\(index)", destination: "user-\(index % destinations)", kind: "quiz.reward",
                                body: #"{"points": \#(index)}"#)
        }
    }
}

/// Answers sends from a rule, recording each call and when it came.
final class ScriptedSink: NotificationSink {
    struct Call: Sendable {
        var id: String
        var destination: String
        var attempt: Int
        var at: ContinuousClock.Instant
    }

    let name = "scripted"
    private let rule: @Sendable (NotificationMessage, Int) -> SinkOutcome
    private let log = Mutex<[Call]>([])

    init(_ rule: @escaping @Sendable (NotificationMessage, Int) -> SinkOutcome) {
        self.rule = rule
    }

    var calls: [Call] { log.withLock { $0 } }

    func calls(to id: String) -> [Call] { calls.filter { $0.id == id } }

    func deliver(_ message: NotificationMessage, attempt: Int) async -> SinkOutcome {
        let index = log.withLock { calls in
            calls.append(Call(id: message.id, destination: message.destination, attempt: attempt, at: .now))
            return calls.filter { $0.id == message.id }.count
        }
        return rule(message, index)
    }

    func shutdown() async {}
}
