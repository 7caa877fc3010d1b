import Codec
import Foundation
import Storage
import Units

/// Devices and users' presence in Redis, shared by every instance: the scripts' callers.
///
/// Users are spread over `shards` hash tags; a user's keys and its shard's deadline set share
/// one tag, so each script is atomic over keys of one slot (and runs on Redis Cluster).
final class PresenceRegistry: Sendable {
    enum Touch: Equatable {
        case accepted(PresenceState)
        case tooManyDevices
        case superseded
    }

    static let shards = 16
    let redis: RedisClient
    let namespace: String

    init(redis: RedisClient, namespace: String) {
        self.redis = redis
        self.namespace = namespace
    }

    /// Milliseconds since 1970 (device deadlines and `changed_at_ms`, comparable across instances).
    static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// The channel a user's changes are published on.
    func channel(of user: String) -> String { "\(namespace):user:\(user)" }

    /// The user a channel of `channel(of:)` belongs to.
    func user(ofChannel channel: String) -> String? {
        let prefix = "\(namespace):user:"
        return channel.hasPrefix(prefix) ? String(channel.dropFirst(prefix.count)) : nil
    }

    private func shard(of user: String) -> Int {
        var hash: UInt32 = 2_166_136_261  // FNV-1a: stable across processes, unlike Hasher
        for byte in user.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return Int(hash % UInt32(Self.shards))
    }

    private func tag(_ shard: Int) -> String { "\(namespace):{\(namespace)-\(shard)}" }
    private func deadlinesKey(_ shard: Int) -> String { "\(tag(shard)):deadlines" }
    private func recordKey(_ user: String) -> String { "\(tag(shard(of: user))):user:\(user)" }

    func keys(of user: String) -> [RedisArgument] {
        let shard = shard(of: user)
        return [RedisArgument("\(tag(shard)):devices:\(user)"), RedisArgument(recordKey(user)), RedisArgument(deadlinesKey(shard))]
    }

    /// A device is alive with this status until `deadlineMs`.
    func touch(user: String, device: String, session: String, status: Tally_V1_PresenceStatus, activity: String,
               deadlineMs: Int64, nowMs: Int64, maxDevices: Int, takeover: Bool) async throws -> Touch {
        let reply = try await redis.run(PresenceScripts.touch, keys: keys(of: user), arguments: [
            RedisArgument(user), RedisArgument(device), RedisArgument(session), RedisArgument(Int(status.rawValue)),
            RedisArgument(activity), RedisArgument(nowMs), RedisArgument(deadlineMs), RedisArgument(maxDevices),
            RedisArgument(channel(of: user)), takeover ? "1" : "0",
        ])
        switch reply.array?.first?.int {
        case -1: return .tooManyDevices
        case -2: return .superseded
        default: return .accepted(try Self.aggregate(reply))
        }
    }

    /// A device goes (its stream ended, or the sweeper found it expired: `expiredOnly`).
    /// Returns the user's presence when it changed.
    @discardableResult
    func leave(user: String, device: String, session: String?, expiredOnly: Bool = false, nowMs: Int64) async throws -> PresenceState? {
        let reply = try await redis.run(PresenceScripts.leave, keys: keys(of: user), arguments: [
            RedisArgument(user), RedisArgument(device), RedisArgument(session ?? ""), RedisArgument(nowMs),
            expiredOnly ? "1" : "0", RedisArgument(channel(of: user)),
        ])
        guard reply.array?.first?.int == 1 else { return nil }
        return try Self.aggregate(reply)
    }

    /// The users' presence now (users Redis does not know are OFFLINE).
    func read(_ users: [String], nowMs: Int64) async throws -> [String: PresenceState] {
        let replies = try await redis.pipeline(users.map { RedisCommand("GET", RedisArgument(recordKey($0))) })
        var states: [String: PresenceState] = [:]
        for (user, reply) in zip(users, replies) {
            if case .error(let message) = reply { throw RedisError(.server, message) }
            states[user] = reply.bytes.flatMap { PresenceState(record: $0, nowMs: nowMs) } ?? .unknown
        }
        return states
    }

    /// Takes every shard's expired devices away (at most `limit` per shard), each claimed
    /// atomically first so concurrent sweepers never both handle one. Returns the users whose presence changed.
    func sweep(nowMs: Int64, lease: Duration, limit: Int) async throws -> Int {
        let calls = (0..<Self.shards).map { shard in
            (keys: [RedisArgument(deadlinesKey(shard))],
             arguments: [RedisArgument(nowMs), RedisArgument(Int(lease.milliseconds)), RedisArgument(limit)])
        }
        var swept = 0
        for reply in try await redis.runPipelined(PresenceScripts.claimExpired, calls: calls) {
            for member in reply.array ?? [] {
                guard let text = member.string, let split = text.firstIndex(of: "\n") else { continue }
                let user = String(text[..<split]), device = String(text[text.index(after: split)...])
                if try await leave(user: user, device: device, session: nil, expiredOnly: true, nowMs: nowMs) != nil {
                    swept += 1
                }
            }
        }
        return swept
    }

    private static func aggregate(_ reply: RESPValue) throws -> PresenceState {
        guard let parts = reply.array, parts.count == 5, let version = parts[1].int, let status = parts[2].int,
            let changedAt = parts[3].int
        else { throw RedisError(.unexpectedReply, "presence script reply \(reply)") }
        return PresenceState(status: Tally_V1_PresenceStatus(rawValue: Int32(status)), activity: parts[4].string ?? "",
                             changedAtMs: changedAt, version: version)
    }
}
