import TestSupport
import Foundation
import NIOPosix
import Testing

@testable import Storage

/// The Redis client against the real Redis of the run (and private ones for restarts).
@Suite("Redis client")
struct RedisClientTests {
    /// A client on its own two loops, shut down after `body`.
    static func key(_ name: String) -> RedisArgument {
        RedisArgument("test:\(UUID().uuidString):\(name)")
    }

    @Test("replies of every RESP type come back as Swift values")
    func replyTypes() async throws {
        try await TestRedis.withClient { redis async throws in
            let key = Self.key("value")
            let binary: [UInt8] = [0, 1, 2, 255, 13, 10, 36]
            #expect(try await redis.send(RedisCommand("SET", key, RedisArgument(bytes: binary))) == .simpleString("OK"))
            #expect(try await redis.send(RedisCommand("GET", key)) == .bulkString(binary))
            #expect(try await redis.send(RedisCommand("GET", Self.key("missing"))) == .null)
            let list = Self.key("list")
            #expect(try await redis.send(RedisCommand("RPUSH", list, "a", "", "c")) == .integer(3))
            #expect(try await redis.send(RedisCommand("LRANGE", list, 0, -1))
                == .array([.bulkString(Array("a".utf8)), .bulkString([]), .bulkString(Array("c".utf8))]))
            let error = await #expect(throws: RedisError.self) {
                try await redis.send(RedisCommand("INCR", list))
            }
            #expect(error?.kind == .server)
            #expect(error?.message.hasPrefix("WRONGTYPE") == true)
        }
    }

    @Test("a pipeline answers in order, with error replies as values")
    func pipeline() async throws {
        try await TestRedis.withClient { redis async throws in
            let counter = Self.key("counter")
            var commands = (0..<1000).map { _ in RedisCommand("INCR", counter) }
            commands.insert(RedisCommand("NOSUCHCOMMAND"), at: 500)
            let replies = try await redis.pipeline(commands)
            #expect(replies.count == 1001)
            #expect(replies[0] == .integer(1))
            if case .error = replies[500] {} else { Issue.record("expected an error reply, got \(replies[500])") }
            #expect(replies[1000] == .integer(1000))
        }
    }

    @Test("thousands of concurrent commands from many tasks each get their own reply")
    func concurrentCommands() async throws {
        try await TestRedis.withClient { redis async throws in
            let prefix = "test:\(UUID().uuidString):"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<5000 {
                    group.addTask {
                        let key = RedisArgument(prefix + String(index))
                        try await redis.send(RedisCommand("SET", key, RedisArgument(index)))
                        let value = try await redis.send(RedisCommand("GET", key))
                        #expect(value.int == Int64(index))
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("a script runs by EVALSHA and is reloaded after SCRIPT FLUSH")
    func scripts() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await TestRedis.withClient(url: isolated.endpoints.redisURL) { redis async throws in
            let script = RedisScript(name: "add", source: "return redis.call('INCRBY', KEYS[1], ARGV[1])")
            let key = Self.key("script")
            #expect(try await redis.run(script, keys: [key], arguments: [5]) == .integer(5))
            #expect(script.sha != nil)
            try await redis.send(RedisCommand("SCRIPT", "FLUSH"))
            #expect(try await redis.run(script, keys: [key], arguments: [2]) == .integer(7))
            let failing = RedisScript(name: "fails", source: "return redis.error_reply('LIMIT reached')")
            let error = await #expect(throws: RedisError.self) {
                try await redis.run(failing, keys: [], arguments: [])
            }
            #expect(error?.message == "LIMIT reached")
        }
    }

    @Test("a command without a reply in time fails with .timeout and the client recovers")
    func commandTimeout() async throws {
        try await TestRedis.withClient({ $0.commandTimeout = .milliseconds(200) }) { redis async throws in
            // BLPOP on an empty list blocks this connection only, for 5 s.
            let error = await #expect(throws: RedisError.self) {
                try await redis.send(RedisCommand("BLPOP", Self.key("never"), 5))
            }
            #expect(error?.kind == .timeout)
            #expect(try await redis.send(RedisCommand("PING")) == .simpleString("PONG"))
        }
    }

    @Test("an unreachable Redis fails fast with UNAVAILABLE, then backs off")
    func unreachable() async throws {
        let port = Self.closedPort
        try await TestRedis.withClient(url: "redis://127.0.0.1:\(port)") { redis async throws in
            for _ in 0..<3 {
                let error = await #expect(throws: RedisError.self) { try await redis.send(RedisCommand("PING")) }
                #expect(error?.kind == .unavailable)
            }
            #expect(await redis.ping() == false)
        }
    }

    @Test("a Redis restart heals: commands fail while it is down and succeed once it is back")
    func restartHeals() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await TestRedis.withClient(url: isolated.endpoints.redisURL, { $0.maxReconnectDelay = .milliseconds(100) }) { redis async throws in
            let key = Self.key("durable")
            try await redis.send(RedisCommand("SET", key, "kept"))
            try await isolated.stop(.redis)
            let error = await #expect(throws: RedisError.self) { try await redis.send(RedisCommand("GET", key)) }
            #expect(error?.kind == .unavailable)
            try await isolated.start(.redis)
            var value: RESPValue?
            for _ in 0..<100 where value == nil {
                value = try? await redis.send(RedisCommand("GET", key))
                if value == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(value == .bulkString(Array("kept".utf8)), "AOF keeps acknowledged writes across the restart")
        }
    }

    @Test("pub/sub delivers published messages to every listener of a channel")
    func publishSubscribe() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let configuration = try RedisConfiguration(url: TestServices.shared.redisURL)
        let subscriber = RedisSubscriber(configuration: configuration, group: group)
        let channel = "test:\(UUID().uuidString)"
        let first = subscriber.messages(on: channel)
        let second = subscriber.messages(on: channel)
        await subscriber.waitUntilSubscribed()
        try await TestRedis.withClient { redis async throws in
            #expect(try await redis.publish(Array("hello".utf8), to: channel) == 1)
            try await redis.publish(Array("world".utf8), to: channel)
        }
        var firstIterator = first.makeAsyncIterator()
        var secondIterator = second.makeAsyncIterator()
        #expect(await firstIterator.next() == Array("hello".utf8))
        #expect(await firstIterator.next() == Array("world".utf8))
        #expect(await secondIterator.next() == Array("hello".utf8))
        await subscriber.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("REDIS_URL forms", arguments: [
        ("redis://127.0.0.1:6380", "127.0.0.1", 6380, 0, nil as String?),
        ("redis://:s3cret@cache.internal/2", "cache.internal", 6379, 2, "s3cret"),
    ])
    func urls(url: String, host: String, port: Int, database: Int, password: String?) throws {
        let configuration = try RedisConfiguration(url: url)
        #expect(configuration.host == host)
        #expect(configuration.port == port)
        #expect(configuration.database == database)
        #expect(configuration.password == password)
    }

    @Test("bad REDIS_URLs are refused with a message", arguments: ["http://x", "redis://host/abc", "nonsense"])
    func badURLs(url: String) {
        #expect(throws: RedisConfiguration.InvalidURL.self) { try RedisConfiguration(url: url) }
    }

    /// A loopback port nobody listens on: port 1 (tcpmux) is privileged and unused, unlike a
    /// just-closed ephemeral port, which a server started by a parallel test may take.
    static let closedPort = 1
}
