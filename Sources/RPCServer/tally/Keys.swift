import ArgumentParser
import Codec
import Domain
import Foundation
import Logging
import NIOPosix
import Storage

/// `tally keys`: partners' API keys, straight on PostgreSQL (and Redis, to announce
/// revocations to running instances); the same operations as the admin RPCs.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, revoke and rotate partners' API keys.",
        subcommands: [Create.self, List.self, Revoke.self, Rotate.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; it is printed once, never stored.")
        @OptionGroup(title: "Storage") var storage: StorageSettings
        @Option(help: "The partner customer the key belongs to.") var customer: String
        @Option(help: "A name to recognise the key by.") var name: String = ""
        @Option(help: "Top-ups per minute for this customer (default: the server's TOPUP_RATE_PER_MIN).") var ratePerMin: Int?

        func run() async throws {
            try await Keys.withKeys(storage) { keys in
                let (record, secret) = try await keys.create(customer: customer, name: name, ratePerMinute: ratePerMin)
                print(secret)
                FileHandle.standardError.write(Data("created \(record.id) for customer \(record.customerID); the key above is shown only now\n".utf8))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never the keys themselves).")
        @OptionGroup(title: "Storage") var storage: StorageSettings
        @Option(help: "Only this customer's keys.") var customer: String?

        func run() async throws {
            try await Keys.withKeys(storage) { keys in
                let records = try await keys.list(customer: customer)
                print(["ID", "CUSTOMER", "NAME", "PREFIX", "RATE/MIN", "CREATED", "LAST USED", "STATE"].joined(separator: "\t"))
                for record in records {
                    let state = record.revokedAt != nil ? "revoked"
                        : record.expiresAt.map { $0 > Date() ? "expires \(Keys.time($0))" : "expired" } ?? "active"
                    print([record.id, record.customerID, record.name, record.prefix + "…", record.ratePerMinute.map(String.init) ?? "default",
                           Keys.time(record.createdAt), record.lastUsedAt.map(Keys.time) ?? "never", state].joined(separator: "\t"))
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key on every instance.")
        @OptionGroup(title: "Storage") var storage: StorageSettings
        @Argument(help: "The key's id (key_...).") var keyID: String

        func run() async throws {
            try await Keys.withKeys(storage) { keys in
                let record = try await keys.revoke(id: keyID)
                print("revoked \(record.id) of customer \(record.customerID)")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a new key for the same customer; the old one stays valid for the overlap.")
        @OptionGroup(title: "Storage") var storage: StorageSettings
        @Argument(help: "The key's id (key_...).") var keyID: String
        @Option(help: "How long the old key stays valid: e.g. 24h, 30m, 0 (revoke at once).") var overlap: String = "24h"

        func run() async throws {
            guard let overlap = Keys.duration(overlap) else { throw ValidationError("--overlap takes e.g. 24h, 90m, 30s or 0, got \(overlap)") }
            try await Keys.withKeys(storage) { keys in
                let rotated = try await keys.rotate(id: keyID, overlap: overlap)
                print(rotated.secret)
                let until = rotated.old.expiresAt.map { "valid until \(Keys.time($0))" } ?? "revoked"
                FileHandle.standardError.write(Data("created \(rotated.new.id); the old key \(rotated.old.id) is \(until)\n".utf8))
            }
        }
    }

    /// Runs `body` with the key store on its own small pool and Redis connection.
    static func withKeys(_ storage: StorageSettings, _ body: (ApiKeys) async throws -> Void) async throws {
        guard let stores = try storage.configuration(Environment()) else {
            throw SettingsError("DATABASE_URL and REDIS_URL (or --database-url, --redis-url) are required")
        }
        var primary = stores.primary
        primary.minConnections = 0
        primary.maxConnections = 1
        let logger = Logger(label: "tally.keys")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let database = PostgresDatabase(primary: primary, replica: nil, logger: logger)
        let redis = RedisClient(configuration: stores.redis, group: group)
        let subscriber = RedisSubscriber(configuration: stores.redis, group: group)
        let keys = ApiKeys(database: database, redis: redis, subscriber: subscriber, logger: logger)
        do {
            try await body(keys)
        } catch {
            await close()
            if let error = error as? PostgresError, error.sqlState == "42P01" {
                throw SettingsError("the database has no api_keys table yet: run `tally migrate` (or start `tally serve`) first")
            }
            if let error = error as? any RPCErrorConvertible { throw SettingsError(error.rpcError.message) }
            throw error
        }
        await close()

        func close() async {
            await subscriber.shutdown()
            await redis.shutdown()
            await database.shutdown()
            try? await group.shutdownGracefully()
        }
    }

    static func time(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }

    /// `24h`, `90m`, `30s`, `1500ms`, `0`.
    static func duration(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        for (suffix, seconds) in [("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("d", 86_400.0)] where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0 else { return nil }
            return .milliseconds(Int64(value * seconds * 1000))
        }
        return nil
    }
}
