import Codec
import Foundation
public import Logging
public import ServiceLifecycle
public import Storage
import Synchronization

/// Partners' API keys: created, listed, revoked and rotated in Postgres (a restart loses
/// nothing), resolved on every call from an in-process cache.
///
/// A revocation (or a rotation without overlap) is published on Redis, and every instance drops
/// the key from its cache at once. Pub/sub is at-most-once: a message missed while Redis was
/// unreachable is covered by the cache's lifetime (`cacheTTL`), after which the key is read
/// from Postgres again. Expiry (a rotation's overlap) is checked on every call, cached or not.
public final class ApiKeys: Service, Sendable {
    static let revocationChannel = "tally:api-keys:revoked"

    private let database: PostgresDatabase
    private let redis: RedisClient
    private let subscriber: RedisSubscriber
    private let cache: ApiKeyCache
    private let lastUsed = Mutex<[String: Date]>([:])
    private let logger: Logger

    public init(database: PostgresDatabase, redis: RedisClient, subscriber: RedisSubscriber, cacheTTL: Duration = .seconds(30),
                logger: Logger) {
        self.database = database
        self.redis = redis
        self.subscriber = subscriber
        self.cache = ApiKeyCache(ttl: cacheTTL)
        self.logger = logger
    }

    // MARK: management (admin RPCs and `tally keys`)

    /// A new key for `customer`; its text is returned only here.
    public func create(customer: String, name: String, ratePerMinute: Int?) async throws -> (record: ApiKeyRecord, secret: String) {
        try Self.validate(customer: customer, name: name, ratePerMinute: ratePerMinute)
        let secret = ApiKeySecret.generate()
        let record = try await database.withConnection { connection in
            try await ApiKeyStore.insert(id: Self.newID(), customer: customer, name: name, ratePerMinute: ratePerMinute,
                                         secret: secret, on: connection)
        }
        return (record, secret.text)
    }

    /// Every key of `customer` (or of everyone), never the keys themselves.
    public func list(customer: String?) async throws -> [ApiKeyRecord] {
        try await database.withConnection { try await ApiKeyStore.list(customer: customer, on: $0) }
    }

    /// Revokes a key on every instance (NOT_FOUND for an unknown id).
    public func revoke(id: String) async throws -> ApiKeyRecord {
        guard let record = try await database.withConnection({ try await ApiKeyStore.revoke(id: id, on: $0) }) else {
            throw RPCError(.notFound, "no API key \(id.prefix(64))")
        }
        await announceRevocation(of: id)
        return record
    }

    /// A new key for the same customer, name and rate; the old one stays valid for `overlap`
    /// (zero: revoked at once).
    public func rotate(id: String, overlap: Duration) async throws -> (old: ApiKeyRecord, new: ApiKeyRecord, secret: String) {
        guard overlap >= .zero else { throw RPCError(.invalidArgument, "overlap: must not be negative") }
        let secret = ApiKeySecret.generate()
        let (old, new) = try await database.withTransaction { connection in
            guard let old = try await ApiKeyStore.find(id: id, on: connection) else {
                throw RPCError(.notFound, "no API key \(id.prefix(64))")
            }
            guard old.revokedAt == nil else { throw RPCError(.failedPrecondition, "API key \(id) is revoked") }
            let new = try await ApiKeyStore.insert(id: Self.newID(), customer: old.customerID, name: old.name,
                                                   ratePerMinute: old.ratePerMinute, secret: secret, on: connection)
            let expiring = overlap == .zero
                ? try await ApiKeyStore.revoke(id: id, on: connection)
                : try await ApiKeyStore.expire(id: id, after: overlap, on: connection)
            return (expiring ?? old, new)
        }
        // Cached copies learn the new expiry (or the revocation) from Postgres again.
        await announceRevocation(of: id)
        return (old, new, secret.text)
    }

    // MARK: resolving (the auth interceptor)

    /// The key's customer and limits; UNAUTHENTICATED for a malformed, unknown, revoked or
    /// expired key. A malformed key (bad prefix, length or checksum) costs no lookup.
    public func resolve(_ presented: String) async throws -> ResolvedApiKey {
        guard let secret = ApiKeySecret(parsing: presented) else {
            throw RPCError(.unauthenticated, "the API key is malformed (expected \(ApiKeySecret.prefix)... with a valid checksum)")
        }
        let hash = secret.hash
        let resolved: ResolvedApiKey?
        if let cached = cache.lookup(hash) {
            resolved = cached
        } else {
            do {
                resolved = try await database.withConnection { try await ApiKeyStore.valid(hash: hash, on: $0) }
            } catch let error as PostgresError {
                logger.warning("API key lookup failed", metadata: ["error": "\(error)"])
                throw RPCError(.unavailable, "API keys cannot be checked right now, retry")
            }
            cache.store(resolved, for: hash)
        }
        guard let resolved, resolved.expiresAt.map({ $0 > Date() }) ?? true else {
            throw RPCError(.unauthenticated, "the API key is not valid (unknown, revoked or expired)")
        }
        lastUsed.withLock { $0[resolved.keyID] = Date() }
        return resolved
    }

    /// Cache hits and misses, for admin stats.
    public var cacheStatistics: CacheStatistics { cache.statistics }

    // MARK: service

    /// Drops revoked keys from the cache as announced, and writes last-used times every 5 s.
    public func run() async throws {
        let revocations = subscriber.messages(on: Self.revocationChannel)
        await withDiscardingTaskGroup { group in
            group.addTask { [cache] in
                for await id in revocations.cancelOnGracefulShutdown() { cache.remove(keyID: String(decoding: id, as: UTF8.self)) }
            }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
                    await self.flushLastUsed()
                }
            }
        }
    }

    /// Writes the last-used times gathered since the previous flush (kept for the next one
    /// when Postgres is unreachable).
    func flushLastUsed() async {
        let used = lastUsed.withLock { used in
            defer { used = [:] }
            return used
        }
        guard !used.isEmpty else { return }
        do {
            try await database.withConnection { try await ApiKeyStore.touch(used, on: $0) }
        } catch {
            lastUsed.withLock { $0.merge(used) { max($0, $1) } }
        }
    }

    private func announceRevocation(of id: String) async {
        cache.remove(keyID: id)
        do {
            _ = try await redis.publish(Array(id.utf8), to: Self.revocationChannel)
        } catch {
            logger.warning("revocation not announced (Redis unreachable): other instances drop the key within their cache TTL",
                           metadata: ["key": "\(id)", "error": "\(error)"])
        }
    }

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return "key_" + String(format: "%016llx", generator.next() as UInt64)
    }

    private static func validate(customer: String, name: String, ratePerMinute: Int?) throws {
        guard !customer.isEmpty, customer.utf8.count <= 128, customer.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw RPCError(.invalidArgument, "customer_id: 1..128 printable ASCII characters without spaces")
        }
        guard name.utf8.count <= 200 else { throw RPCError(.invalidArgument, "name: at most 200 bytes") }
        if let ratePerMinute, !(1...1_000_000).contains(ratePerMinute) {
            throw RPCError(.invalidArgument, "rate_per_min: between 1 and 1000000, got \(ratePerMinute)")
        }
    }
}
