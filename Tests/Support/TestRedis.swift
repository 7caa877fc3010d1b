import Foundation
import NIOCore
import NIOPosix
package import Storage

/// A Redis client of one test, on its own event loops, against the run's Redis by default.
package enum TestRedis {
    package static func withClient<T>(
        url: String = TestServices.shared.redisURL,
        _ adjust: (inout RedisConfiguration) -> Void = { _ in },
        _ body: (RedisClient) async throws -> T
    ) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = try RedisConfiguration(url: url)
        adjust(&configuration)
        let client = RedisClient(configuration: configuration, group: group)
        do {
            let result = try await body(client)
            await client.shutdown()
            try await group.shutdownGracefully()
            return result
        } catch {
            await client.shutdown()
            try await group.shutdownGracefully()
            throw error
        }
    }

    /// Feeds `resp` (RESP bytes) to a reader and hands its one reply to `body` (no Redis needed).
    package static func withReply<T>(_ resp: String, _ body: (RESPReply) throws -> T) throws -> T {
        let reader = RESPReader()
        reader.feed(ByteBuffer(string: resp))
        var result: T?
        guard try reader.withNextReply({ result = try body($0) }), let result else { throw ReplyError("no complete reply in \(resp.debugDescription)") }
        guard try !reader.withNextReply({ _ in }) else { throw ReplyError("more than one reply in \(resp.debugDescription)") }
        return result
    }

    /// Every lease of `queue` expired, as if its lease time had passed: each claim's expiry (in
    /// `:active` and `:claims`, see `JobQueueScripts`) moved to the past. Tests move the queue's
    /// stored time instead of waiting for it (a loaded machine makes real waits unpredictable).
    package static func expireLeases(of queue: JobQueue, redis: RedisClient) async throws {
        for key in ["active", "claims"] {
            let set = RedisArgument("{q:\(queue.name)}:\(key)")
            for member in try await redis.send(RedisCommand("ZRANGE", set, "0", "-1")).array ?? [] {
                guard let bytes = member.bytes else { throw ReplyError("a member of \(key) is not a string") }
                _ = try await redis.send(RedisCommand("ZADD", set, "XX", "1", RedisArgument(bytes: bytes)))
            }
        }
    }

    package struct ReplyError: Error, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }
}
