import Foundation
import NIOPosix
@testable import Storage
import Testing

@testable import Domain

/// Every Redis script and multi-key command keeps its keys in one cluster slot (a Redis
/// Cluster refuses a script whose keys span slots with CROSSSLOT): per key family, the keys
/// one call touches together, built by the code that builds them, share a slot.
@Suite("Redis key families keep each call's keys in one slot")
struct KeySlotsTests {
    /// Loops for the stores below; none of them connects (no command is sent).
    static let redis = RedisClient(configuration: .defaults, group: MultiThreadedEventLoopGroup.singleton)

    static func sameSlot(_ keys: [RedisArgument]) -> Bool {
        Set(keys.map { RedisKeySlot.of($0.bytes[...]) }).count == 1
    }

    @Test("a board's sorted set, members, readiness, rebuild copies, version, revisions and submission marks", arguments: [
        BoardID.global, .tournament("t-1"), .quiz("quiz-42"), .tournament("{odd}"),
    ])
    func boards(board: BoardID) {
        let keys = BoardKeys(board)
        #expect(Self.sameSlot([keys.z, keys.m, keys.ready, keys.building, keys.nextZ, keys.nextM, keys.version,
                               keys.revisions, keys.nextRevisions, keys.submission("sub-1")]))
    }

    @Test("boards spread over slots (not all on one node)")
    func boardsSpread() {
        let slots = Set((0..<50).map { RedisKeySlot.of(BoardKeys(.tournament("t-\($0)")).z.bytes[...]) })
        #expect(slots.count > 40)
    }

    @Test("a queue's lists, sets, leases, dedupe marks and stats (the scripts build them from the tag)", arguments: ["events", "topups", "notifications"])
    func queues(name: String) {
        let tag = JobQueue(name: name, redis: Self.redis).tag
        let suffixes = [":waiting:0", ":waiting:9", ":active", ":claims", ":completed", ":dead", ":delayed", ":error", ":failed",
                        ":meta", ":payload", ":seen:1800000:12", ":stats", ":throughput:1700000000"]
        #expect(Self.sameSlot([RedisArgument(tag)] + suffixes.map { RedisArgument(tag + $0) }))
    }

    @Test("a rate-limit shard's decisions and its sweep cursor")
    func rateLimits() {
        let limiter = RateLimiter(redis: Self.redis, keyPrefix: "rl", shards: 16)
        for keys in limiter.shardKeys { #expect(Self.sameSlot(keys)) }
        #expect(Set(limiter.shardKeys.map { RedisKeySlot.of($0[0].bytes[...]) }).count == 16)
    }

    @Test("a user's presence devices, record and its shard's deadlines", arguments: ["u-1", "user{x}", "élodie"])
    func presence(user: String) {
        #expect(Self.sameSlot(PresenceRegistry(redis: Self.redis, namespace: "presence").keys(of: user)))
    }

    @Test("a destination's pause and the index of pauses")
    func pauses() {
        let pauses = DestinationPauses(redis: Self.redis, namespace: "notify")
        #expect(Self.sameSlot([RedisArgument(pauses.key(of: "https://sink.example/hook")), RedisArgument("\(pauses.prefix):ends")]))
    }
}
