import TestSupport
import Foundation
import NIOPosix
import Testing

@testable import Storage

/// The Redis client against the run's real Redis Cluster (3 masters, 3 replicas,
/// `services.sh cluster start`): routing by slot, redirections, scripts and replica
/// acknowledgements.
@Suite("Redis Cluster client")
struct RedisClusterTests {
    static func key(_ name: String, tag: String = UUID().uuidString) -> String {
        "test:{\(tag)}:\(name)"
    }

    @Test("CRC16 is the XMODEM variant Redis Cluster specifies (check value of 123456789)")
    func crc16() {
        #expect(RedisKeySlot.crc16(Array("123456789".utf8)[...]) == 0x31C3)
    }

    @Test("the slot of a key is the one Redis' own CLUSTER KEYSLOT names", arguments: [
        "foo", "bar", "", "a", "123456789", "{user1000}.following", "{user1000}.followers", "foo{}{bar}",
        "foo{{bar}}zap", "foo{bar}{zap}", "{}", "}{", "{q:events}", "{q:events}:waiting:9", "lb:{lb:global}:z",
        "{lb:quiz:Q-7}:r:next", "presence:{presence-17}:user:u-1", "rl:{rl:3}:tat", "événement 漢字 🎲",
    ])
    func slotMatchesRedis(key: String) async throws {
        try await TestRedis.withClient(url: TestServices.clusterURL) { redis async throws in
            let answer = try await redis.send(RedisCommand("CLUSTER", "KEYSLOT", RedisArgument(key)))
            #expect(answer.int == Int64(RedisKeySlot.of(key)))
        }
    }

    @Test("commands go to the master of their key's slot: each value is on that master")
    func routesBySlot() async throws {
        try await TestRedis.withClient(url: TestServices.clusterURL) { redis async throws in
            let keys = (0..<60).map { Self.key("k\($0)") }
            for key in keys { try await redis.send(RedisCommand("SET", RedisArgument(key), RedisArgument(key))) }
            let values = try await redis.pipeline(keys.map { RedisCommand("GET", RedisArgument($0)) })
            #expect(values == keys.map { RESPValue.bulkString(Array($0.utf8)) })
            // Asked directly (no redirections followed), each slot's master has the key.
            let owners = try await Self.masters(redis)
            #expect(Set(owners.map(\.address)).count == 3)
            for key in keys.prefix(12) {
                let slot = RedisKeySlot.of(key)
                let owner = try #require(owners.first { $0.slots.contains(slot) })
                try await TestRedis.withClient(url: "redis://\(owner.address)") { node async throws in
                    #expect(try await node.send(RedisCommand("GET", RedisArgument(key))).string == key)
                }
            }
        }
    }

    @Test("scripts run on their slot's node and are loaded again after SCRIPT FLUSH on every node")
    func scripts() async throws {
        let script = RedisScript(name: "test_pair", source: "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return redis.call('GET', KEYS[2])")
        try await TestRedis.withClient(url: TestServices.clusterURL) { redis async throws in
            for round in 0..<2 {
                for index in 0..<9 {
                    let tag = UUID().uuidString
                    let reply = try await redis.run(script, keys: [RedisArgument(Self.key("a", tag: tag)), RedisArgument(Self.key("b", tag: tag))],
                                                    arguments: [RedisArgument("\(round)-\(index)")])
                    #expect(reply.string == "\(round)-\(index)")
                }
                let pipelined = try await redis.runPipelined(script, calls: (0..<9).map { index in
                    let tag = UUID().uuidString
                    return (keys: [RedisArgument(Self.key("a", tag: tag)), RedisArgument(Self.key("b", tag: tag))], arguments: [RedisArgument(index)])
                })
                #expect(pipelined.map(\.string) == (0..<9).map { String($0) })
                for owner in try await Self.masters(redis) {
                    _ = try await TestRedis.withClient(url: "redis://\(owner.address)") { node async throws in
                        try await node.send(RedisCommand("SCRIPT", "FLUSH"))
                    }
                }
            }
        }
    }

    @Test("ASK during a slot migration and MOVED after it are followed; the key stays readable and writable")
    func redirections() async throws {
        try await TestRedis.withClient(url: TestServices.clusterURL) { redis async throws in
            let tag = UUID().uuidString
            let moved = Self.key("moved", tag: tag)
            let slot = RedisKeySlot.of(moved)
            try await redis.send(RedisCommand("SET", RedisArgument(moved), "before"))
            let owners = try await Self.masters(redis)
            let source = try #require(owners.first { $0.slots.contains(slot) }).address
            let target = try #require(owners.first { !$0.slots.contains(slot) }).address
            try await Self.withNodes(source, target) { from, to in
                let fromID = try #require(try await from.send(RedisCommand("CLUSTER", "MYID")).string)
                let toID = try #require(try await to.send(RedisCommand("CLUSTER", "MYID")).string)
                try await Self.beginMigration(of: slot, from: from, fromID: fromID, to: to, toID: toID, at: target)
                // Mid-migration the source answers ASK for a key it no longer has: only an
                // ASKING on the target reaches it (the slot map still names the source).
                #expect(try await redis.send(RedisCommand("GET", RedisArgument(moved))).string == "before")
                let fresh = Self.key("fresh", tag: tag)
                try await redis.send(RedisCommand("SET", RedisArgument(fresh), "during"))
                // A new key of the migrating slot is created on the target (the source sent ASK).
                let onTarget = try await to.pipeline([RedisCommand("ASKING"), RedisCommand("GET", RedisArgument(fresh))])
                #expect(onTarget.last?.string == "during")
                try await Self.endMigration(of: slot, nodes: [to, from], owner: toID)
                // Now the source answers MOVED: followed, and the map learns the new owner.
                #expect(try await redis.send(RedisCommand("GET", RedisArgument(moved))).string == "before")
                #expect(try await redis.send(RedisCommand("GET", RedisArgument(fresh))).string == "during")
                try await redis.send(RedisCommand("SET", RedisArgument(moved), "after"))
                #expect(try await to.send(RedisCommand("GET", RedisArgument(moved))).string == "after")
                // And back, so the cluster keeps its layout for the other tests.
                try await Self.beginMigration(of: slot, from: to, fromID: toID, to: from, toID: fromID, at: source)
                try await Self.endMigration(of: slot, nodes: [from, to], owner: fromID)
                #expect(try await redis.send(RedisCommand("GET", RedisArgument(moved))).string == "after")
            }
        }
    }

    @Test("a durable write returns once a replica has it; asking for more replicas than exist is refused as unavailable")
    func replicaAcknowledgement() async throws {
        let script = RedisScript(name: "test_set", source: "return redis.call('SET', KEYS[1], ARGV[1])")
        let key = RedisArgument(Self.key("durable"))
        try await TestRedis.withClient(url: TestServices.clusterURL) { redis async throws in
            #expect(redis.configuration.minReplicasAck == 1)
            #expect(try await redis.runAcknowledged(script, keys: [key], arguments: ["one"]).string == "OK")
        }
        try await TestRedis.withClient(url: TestServices.clusterURL, {
            $0.minReplicasAck = 2  // every master has one replica
            $0.replicaAckTimeout = .milliseconds(200)
        }) { redis async throws in
            let error = await #expect(throws: RedisError.self) {
                try await redis.runAcknowledged(script, keys: [key], arguments: ["two"])
            }
            #expect(error?.kind == .unavailable)
        }
        // One Redis without replicas cannot confirm either.
        try await TestRedis.withClient({ $0.minReplicasAck = 1; $0.replicaAckTimeout = .milliseconds(100) }) { redis async throws in
            let error = await #expect(throws: RedisError.self) {
                try await redis.runAcknowledged(script, keys: [key], arguments: ["three"])
            }
            #expect(error?.kind == .unavailable)
        }
    }

    @Test("durable writes sent together share their WAITs: at most one is in flight per connection")
    func acknowledgementsShareWaits() async throws {
        let script = RedisScript(name: "test_set", source: "return redis.call('SET', KEYS[1], ARGV[1])")
        let tag = UUID().uuidString
        let keys = (0..<200).map { Self.key("w\($0)", tag: tag) }
        try await TestRedis.withClient(url: TestServices.clusterURL) { redis async throws in
            let owner = try #require(try await Self.masters(redis).first { $0.slots.contains(RedisKeySlot.of(keys[0])) })
            try await TestRedis.withClient(url: "redis://\(owner.address)") { node async throws in
                let before = try await Self.waitCalls(on: node)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for key in keys {
                        group.addTask {
                            let reply = try await redis.runAcknowledged(script, keys: [RedisArgument(key)], arguments: [RedisArgument(key)])
                            #expect(reply.string == "OK")
                        }
                    }
                    try await group.waitForAll()
                }
                let waits = try await Self.waitCalls(on: node) - before
                #expect(waits >= 1 && waits < keys.count / 2, "\(waits) WAITs for \(keys.count) writes")
                let stored = try await node.pipeline(keys.map { RedisCommand("GET", RedisArgument($0)) })
                #expect(stored == keys.map { RESPValue.bulkString(Array($0.utf8)) })
            }
        }
    }

    /// WAIT commands a node has run so far (INFO commandstats).
    static func waitCalls(on node: RedisClient) async throws -> Int {
        let info = try await node.send(RedisCommand("INFO", "commandstats")).string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_wait:") } ?? ""
        return line.split(separator: ",").first.flatMap { Int($0.split(separator: "=").last ?? "") } ?? 0
    }

    @Test("pub/sub crosses the cluster: a message published through one node reaches a subscriber on another")
    func publishSubscribe() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var configuration = try RedisConfiguration(url: TestServices.clusterURL)
        configuration.clusterNodes.reverse()  // subscribe on the last node, publish through the first master
        let subscriber = RedisSubscriber(configuration: configuration, group: group)
        let channel = "test:\(UUID().uuidString)"
        let messages = subscriber.messages(on: channel)
        await subscriber.waitUntilSubscribed()
        _ = try await TestRedis.withClient(url: TestServices.clusterURL) { redis async throws in
            try await redis.publish(Array("hello".utf8), to: channel)
        }
        var iterator = messages.makeAsyncIterator()
        #expect(await iterator.next() == Array("hello".utf8))
        await subscriber.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("cluster URL forms", arguments: [
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", [RedisNodeAddress(host: "127.0.0.1", port: 7000), RedisNodeAddress(host: "127.0.0.1", port: 7001)], nil as String?),
        ("redis+cluster://:pw@cache-a:6379/0", [RedisNodeAddress(host: "cache-a", port: 6379)], "pw"),
    ])
    func urls(url: String, nodes: [RedisNodeAddress], password: String?) throws {
        let configuration = try RedisConfiguration(url: url)
        #expect(configuration.clusterNodes == nodes && configuration.isCluster)
        #expect(configuration.password == password && configuration.minReplicasAck == 1)
    }

    @Test("bad cluster URLs are refused with a message", arguments: ["redis+cluster://", "redis+cluster://host", "redis+cluster://a:1/2", "redis+cluster://a:x"])
    func badURLs(url: String) {
        #expect(throws: RedisConfiguration.InvalidURL.self) { try RedisConfiguration(url: url) }
    }

    // MARK: helpers

    struct Master {
        var address: RedisNodeAddress
        var slots: IndexSet
    }

    /// The masters and their slots, as the cluster says now.
    static func masters(_ redis: RedisClient) async throws -> [Master] {
        var masters: [RedisNodeAddress: IndexSet] = [:]
        for range in try await redis.send(RedisCommand("CLUSTER", "SLOTS")).array ?? [] {
            let fields = range.array ?? []
            let node = fields[2].array ?? []
            let address = RedisNodeAddress(host: node[0].string ?? "", port: Int(node[1].int ?? 0))
            masters[address, default: IndexSet()].insert(integersIn: Int(fields[0].int!)...Int(fields[1].int!))
        }
        return masters.map { Master(address: $0.key, slots: $0.value) }
    }

    /// Marks `slot` as moving from one master to another and moves every key it holds.
    static func beginMigration(of slot: Int, from: RedisClient, fromID: String, to: RedisClient, toID: String,
                               at target: RedisNodeAddress) async throws {
        try await to.send(RedisCommand("CLUSTER", "SETSLOT", RedisArgument(slot), "IMPORTING", RedisArgument(fromID)))
        try await from.send(RedisCommand("CLUSTER", "SETSLOT", RedisArgument(slot), "MIGRATING", RedisArgument(toID)))
        while true {
            let keys = try await from.send(RedisCommand("CLUSTER", "GETKEYSINSLOT", RedisArgument(slot), 100)).array ?? []
            if keys.isEmpty { return }
            try await from.send(RedisCommand("MIGRATE", [RedisArgument(target.host), RedisArgument(target.port), "", 0, 5000, "KEYS"]
                + keys.map { RedisArgument(bytes: $0.bytes ?? []) }))
        }
    }

    /// Gives `slot` to `owner` on both masters of a migration (the target first).
    static func endMigration(of slot: Int, nodes: [RedisClient], owner: String) async throws {
        for node in nodes {
            try await node.send(RedisCommand("CLUSTER", "SETSLOT", RedisArgument(slot), "NODE", RedisArgument(owner)))
        }
    }

    static func withNodes(_ first: RedisNodeAddress, _ second: RedisNodeAddress, _ body: (RedisClient, RedisClient) async throws -> Void) async throws {
        try await TestRedis.withClient(url: "redis://\(first)") { one async throws in
            try await TestRedis.withClient(url: "redis://\(second)") { two async throws in
                try await body(one, two)
            }
        }
    }
}
