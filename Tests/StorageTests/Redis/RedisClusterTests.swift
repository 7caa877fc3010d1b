import TestSupport
import Foundation
import NIOPosix
import Testing

@testable import Storage

/// The Redis client against the run's real Redis Cluster (3 masters, 3 replicas,
/// `services.sh cluster start`): routing by slot, redirections, scripts and replica
/// acknowledgements. Serialized: its tests change the shared cluster (SCRIPT FLUSH, a slot
/// migration, a stopped replica) or count the commands a node runs.
@Suite("Redis Cluster client", .serialized)
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

    @Test("durable writes sent together share their WAITs: at most one is in flight per connection, also while it opens")
    func acknowledgementsShareWaits() async throws {
        let script = RedisScript(name: "test_set", source: "return redis.call('SET', KEYS[1], ARGV[1])")
        let url = TestServices.clusterURL
        let firstSeed = try #require(try RedisConfiguration(url: url).clusterNodes.first)
        // Keys of a master other than the first seed (which a new client asks for the slot map),
        // so that the new client below has no connection to it before the writes; the script
        // is loaded there first (a NOSCRIPT would send each write again after its own load).
        let (tag, owner, replica) = try await TestRedis.withClient(url: url) { redis async throws in
            let masters = try await Self.masters(redis)
            while true {
                let tag = UUID().uuidString
                let owner = try #require(masters.first { $0.slots.contains(RedisKeySlot.of(Self.key("", tag: tag))) })
                guard owner.address != firstSeed else { continue }
                _ = try await redis.runAcknowledged(script, keys: [RedisArgument(Self.key("", tag: tag))], arguments: ["loaded"])
                return (tag, owner.address, try #require(owner.replicas.first))
            }
        }
        let replicaPID = try await TestRedis.withClient(url: "redis://\(replica)") { try await Self.processID(of: $0) }
        let loops = 2  // TestRedis' clients: one connection per loop and node
        try await TestRedis.withClient(url: url, {
            $0.replicaAckTimeout = .seconds(60)  // the replica is stopped for as long as the writes take to arrive
            $0.commandTimeout = .seconds(120)
        }) { redis async throws in
            try await TestRedis.withClient(url: "redis://\(owner)") { node async throws in
                // First while the connections open (writes queued for them), then on open ones.
                for round in ["opening", "open"] {
                    let keys = (0..<200).map { Self.key("\(round)-\($0)", tag: tag) }
                    let waits = try await Self.waitsForWrites(keys, script, through: redis, on: node, replicaPID: replicaPID)
                    #expect(waits >= 1 && waits <= 2 * loops, "\(round) connections: \(waits) WAITs for \(keys.count) writes over \(loops) connections")
                    let stored = try await node.pipeline(keys.map { RedisCommand("GET", RedisArgument($0)) })
                    #expect(stored == keys.map { RESPValue.bulkString(Array($0.utf8)) })
                }
            }
        }
    }

    /// Sends a durable write of each key at once and returns the WAITs `node` ran meanwhile.
    /// The node's replica stays stopped until every write is sent (or queued while its
    /// connection opens) and waiting: a connection's first WAIT blocks, so the writes after
    /// it can share only one more, however slowly they arrive.
    static func waitsForWrites(_ keys: [String], _ script: RedisScript, through redis: RedisClient, on node: RedisClient,
                               replicaPID: pid_t) async throws -> Int {
        let before = try await waitCalls(on: node)
        kill(replicaPID, SIGSTOP)
        defer { kill(replicaPID, SIGCONT) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for key in keys {
                group.addTask {
                    let reply = try await redis.runAcknowledged(script, keys: [RedisArgument(key)], arguments: [RedisArgument(key)])
                    #expect(reply.string == "OK")
                }
            }
            var waiting = 0
            _ = try await eventually(attempts: 1500) {  // up to 30 s: a guard against a hang, not a timing assertion
                waiting = await redis.writesAwaitingReplicas
                return waiting >= keys.count
            }
            #expect(waiting == keys.count, "\(waiting) of \(keys.count) writes waiting for their replica")
            kill(replicaPID, SIGCONT)
            try await group.waitForAll()
        }
        return try await waitCalls(on: node) - before
    }

    /// The process id of the Redis server `node` is connected to (INFO server).
    static func processID(of node: RedisClient) async throws -> pid_t {
        try #require(pid_t(try await info("server", field: "process_id", on: node)), "no process_id in INFO server")
    }

    /// WAIT commands a node has run so far (INFO commandstats).
    static func waitCalls(on node: RedisClient) async throws -> Int {
        let stats = try await info("commandstats", field: "cmdstat_wait", on: node)  // calls=N,usec=...
        return stats.split(separator: ",").first.flatMap { Int($0.split(separator: "=").last ?? "") } ?? 0
    }

    /// The value of `field` in `INFO section` of `node` ("" when absent).
    static func info(_ section: String, field: String, on node: RedisClient) async throws -> Substring {
        let info = try await node.send(RedisCommand("INFO", RedisArgument(section))).string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(field + ":") } ?? ""
        return line.dropFirst(field.count + 1)
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
        var replicas: [RedisNodeAddress] = []
    }

    /// The masters and their slots, as the cluster says now.
    static func masters(_ redis: RedisClient) async throws -> [Master] {
        var masters: [RedisNodeAddress: Master] = [:]
        for range in try await redis.send(RedisCommand("CLUSTER", "SLOTS")).array ?? [] {
            let fields = range.array ?? []
            let nodes = fields.dropFirst(2).map { node in
                RedisNodeAddress(host: node.array?[0].string ?? "", port: Int(node.array?[1].int ?? 0))
            }
            masters[nodes[0], default: Master(address: nodes[0], slots: IndexSet(), replicas: Array(nodes.dropFirst()))]
                .slots.insert(integersIn: Int(fields[0].int!)...Int(fields[1].int!))
        }
        return Array(masters.values)
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
