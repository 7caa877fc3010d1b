public import NIOCore
import NIOPosix

/// Redis for the whole process: one connection per event loop, pipelined, on hiredis' RESP
/// reader and command formatter; against a Redis Cluster (`redis+cluster://`), one connection
/// per event loop and node, each command sent to the master of its key's slot (`RedisCluster`).
///
/// A caller running on one of the group's event loops (an RPC handler, which runs on its
/// connection's loop) uses that loop's connection, so the command and its reply never cross
/// threads; other callers use the next loop's. Commands sent during one loop tick share one
/// write (pipelining for free under concurrency). Commands fail fast with `.unavailable`
/// while Redis is unreachable, so callers can fall back.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let group: any EventLoopGroup
    /// One slot per loop of `group`, keyed by the loop's identity; immutable after init.
    private let slots: [ObjectIdentifier: NIOLoopBoundBox<RedisConnectionSlot>]
    /// The router when Redis is a cluster (then `slots` is empty).
    private let cluster: RedisCluster?

    public init(configuration: RedisConfiguration, group: any EventLoopGroup) {
        self.configuration = configuration
        self.group = group
        cluster = configuration.isCluster ? RedisCluster(configuration: configuration, group: group) : nil
        var slots: [ObjectIdentifier: NIOLoopBoundBox<RedisConnectionSlot>] = [:]
        for loop in group.makeIterator() where !configuration.isCluster {
            slots[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                RedisConnectionSlot(loop: loop, configuration: configuration), eventLoop: loop)
        }
        self.slots = slots
    }

    // MARK: commands

    /// Runs one command; an error reply throws `RedisError` of kind `.server`.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        let reply = if let cluster { try await cluster.call({ command }) { $0.value } } else { try await reply(to: command).get() }
        if case .error(let message) = reply { throw RedisError(.server, message) }
        return reply
    }

    /// Runs commands back to back in one write; replies come in order, error replies as
    /// `.error` values. Not a transaction: use a script for atomicity.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        if let cluster { return try await cluster.pipeline(commands) }
        let slot = currentSlot()
        let futures: [EventLoopFuture<RESPValue>]
        if slot.eventLoop.inEventLoop {
            futures = commands.map { command in Self.enqueue(command, on: slot) }
        } else {
            futures = try await slot.eventLoop.submit {
                commands.map { command in Self.enqueue(command, on: slot) }
            }.get()
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(futures.count)
        for future in futures { replies.append(try await future.get()) }
        return replies
    }

    /// Runs a script with `EVALSHA`, loading it first when Redis does not know it.
    @discardableResult
    public func run(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) async throws -> RESPValue {
        if let cluster {
            let reply = try await cluster.call(script: script, { RedisCluster.evalsha(script, keys, arguments) }) { $0.value }
            if case .error(let message) = reply { throw RedisError(.server, message) }
            return reply
        }
        if let sha = script.sha {
            let reply = try await reply(to: Self.evalsha(sha, keys, arguments)).get()
            if case .error(let message) = reply {
                let error = RedisError(.server, message)
                guard error.isNoScript else { throw error }
            } else {
                return reply
            }
        }
        let sha = try await load(script)
        return try await send(Self.evalsha(sha, keys, arguments))
    }

    /// Runs a script with `EVALSHA` like `run(_:keys:arguments:)`, but decodes the reply on the
    /// connection's loop, in place in hiredis' parsed tree, with `decode` (hot reads: no
    /// `RESPValue` copy of every element). Error replies throw `.server`.
    package func run<Reply: Sendable>(
        _ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument],
        decoding decode: @escaping @Sendable (RESPReply) throws -> Reply
    ) async throws -> Reply {
        if let cluster {
            return try await cluster.call(script: script, { RedisCluster.evalsha(script, keys, arguments) }, decode: Self.throwingErrors(decode))
        }
        if let sha = script.sha {
            do {
                return try await reply(to: Self.evalsha(sha, keys, arguments), decoding: decode)
            } catch let error as RedisError where error.isNoScript {
                // Redis lost its scripts (restart, SCRIPT FLUSH): load it and run it again.
            }
        }
        let sha = try await load(script)
        return try await reply(to: Self.evalsha(sha, keys, arguments), decoding: decode)
    }

    /// Sends one command and decodes its reply in place, on the connection's loop, with
    /// `decode` (hot reads: no `RESPValue` copy of every element). Error replies throw `.server`.
    package func send<Reply: Sendable>(_ command: RedisCommand, decoding decode: @escaping @Sendable (RESPReply) throws -> Reply) async throws -> Reply {
        if let cluster { return try await cluster.call({ command }, decode: Self.throwingErrors(decode)) }
        return try await reply(to: command, decoding: decode)
    }

    /// Runs a script that makes data durable (queued jobs) and, when `minReplicasAck` asks for
    /// it, returns only once that many replicas have the write (`WAIT` right after it on the
    /// same connection): a master that dies after answering cannot take the write with it.
    /// Too few confirmations within `replicaAckTimeout` throw `.unavailable` (the write may
    /// exist: retries must be idempotent, as every enqueue is).
    @discardableResult
    public func runAcknowledged(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) async throws -> RESPValue {
        guard configuration.minReplicasAck > 0 else { return try await run(script, keys: keys, arguments: arguments) }
        let reply = try await acknowledgedReply(script, keys: keys, arguments: arguments)
        if case .error(let message) = reply { throw RedisError(.server, message) }
        return reply
    }

    /// `runPipelined` for writes whose success deletes their other record (a leaderboard merge
    /// confirms its pending row in Postgres): with `minReplicasAck`, each call is answered once
    /// that many replicas have it, or the whole call throws `.unavailable`.
    public func runPipelinedAcknowledged(_ script: RedisScript, calls: [(keys: [RedisArgument], arguments: [RedisArgument])]) async throws -> [RESPValue] {
        guard configuration.minReplicasAck > 0, !calls.isEmpty else { return try await runPipelined(script, calls: calls) }
        return try await withThrowingTaskGroup(of: (Int, RESPValue).self) { group in
            for (index, call) in calls.enumerated() {
                group.addTask { (index, try await self.acknowledgedReply(script, keys: call.keys, arguments: call.arguments)) }
            }
            var replies = [RESPValue](repeating: .null, count: calls.count)
            for try await (index, reply) in group { replies[index] = reply }
            return replies
        }
    }

    /// The script's reply (error replies as values) once `minReplicasAck` replicas have its write.
    private func acknowledgedReply(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) async throws -> RESPValue {
        if let cluster {
            return try await cluster.callAcknowledged(script: script) { RedisCluster.evalsha(script, keys, arguments) }
        }
        let sha = if let sha = script.sha { sha } else { try await load(script) }
        let reply = try await acknowledged(Self.evalsha(sha, keys, arguments))
        guard case .error(let message) = reply, RedisError(.server, message).isNoScript else { return reply }
        return try await acknowledged(Self.evalsha(try await load(script), keys, arguments))
    }

    /// Runs a script once per call, all in one pipelined write; replies in order, error
    /// replies as `.error` values. Used where one request needs many independent decisions.
    public func runPipelined(_ script: RedisScript, calls: [(keys: [RedisArgument], arguments: [RedisArgument])]) async throws -> [RESPValue] {
        guard !calls.isEmpty else { return [] }
        if let cluster { return try await cluster.pipeline(script: script, calls.map { RedisCluster.evalsha(script, $0.keys, $0.arguments) }) }
        var sha = script.sha
        if sha == nil { sha = try await load(script) }
        let replies = try await pipeline(calls.map { Self.evalsha(sha!, $0.keys, $0.arguments) })
        // NOSCRIPT means none of them ran (the cache was flushed): load and run them again.
        if replies.contains(where: { if case .error(let message) = $0 { return RedisError(.server, message).isNoScript } else { return false } }) {
            let sha = try await load(script)
            return try await pipeline(calls.map { Self.evalsha(sha, $0.keys, $0.arguments) })
        }
        return replies
    }

    /// Publishes a message on a channel; returns how many subscribers received it.
    @discardableResult
    public func publish(_ message: [UInt8], to channel: String) async throws -> Int {
        Int(try await send(RedisCommand("PUBLISH", RedisArgument(channel), RedisArgument(bytes: message))).int ?? 0)
    }

    /// True when at least one loop holds an open connection.
    public var hasOpenConnection: Bool {
        get async {
            if let cluster { return await cluster.hasOpenConnection }
            for slot in slots.values {
                let connected = try? await slot.eventLoop.submit { slot.value.isConnected }.get()
                if connected == true { return true }
            }
            return false
        }
    }

    /// Durable writes (`runAcknowledged`) sent or queued on any connection whose replicas have
    /// not confirmed them yet.
    package var writesAwaitingReplicas: Int {
        get async {
            if let cluster { return await cluster.writesAwaitingReplicas }
            var count = 0
            for slot in slots.values {
                count += (try? await slot.eventLoop.submit { slot.value.acknowledgements.count }.get()) ?? 0
            }
            return count
        }
    }

    /// A PING through the current loop's connection: healthy when Redis answers in time.
    public func ping() async -> Bool {
        (try? await send(RedisCommand("PING")))?.string == "PONG"
    }

    /// Closes every connection; later commands fail with `.shutdown`.
    public func shutdown() async {
        await cluster?.shutdown()
        for slot in slots.values {
            try? await slot.eventLoop.submit { slot.value.shutdown() }.get()
        }
    }

    // MARK: internals

    private func load(_ script: RedisScript) async throws -> String {
        let reply = try await send(RedisCommand("SCRIPT", "LOAD", RedisArgument(script.source)))
        guard let sha = reply.string else {
            throw RedisError(.unexpectedReply, "SCRIPT LOAD of \(script.name) returned no SHA1")
        }
        script.remember(sha: sha)
        return sha
    }

    /// The single Redis' half of `runAcknowledged`: the command and `WAIT` back to back; an
    /// error reply comes back as a value (nothing was written to wait for).
    private func acknowledged(_ command: RedisCommand) async throws -> RESPValue {
        let slot = currentSlot()
        let replicas = configuration.minReplicasAck
        let timeout = configuration.replicaAckTimeout
        let (reply, confirmed) = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<(reply: RESPValue, replicas: Int), any Error>) in
            let send: @Sendable () -> Void = {
                slot.value.sendAcknowledged(command, replicas: replicas, timeout: timeout) { continuation.resume(with: $0) }
            }
            if slot.eventLoop.inEventLoop { send() } else { slot.eventLoop.execute(send) }
        }
        if case .error = reply { return reply }
        guard confirmed >= replicas else {
            throw RedisError(.unavailable, "\(confirmed) of \(replicas) replicas confirmed the write within \(timeout)")
        }
        return reply
    }

    /// `decode` behind a check that turns an error reply into `RedisError.server`.
    private static func throwingErrors<Reply>(_ decode: @escaping @Sendable (RESPReply) throws -> Reply) -> @Sendable (RESPReply) throws -> Reply {
        { reply in
            if let message = reply.errorMessage { throw RedisError(.server, message) }
            return try decode(reply)
        }
    }

    private static func evalsha(_ sha: String, _ keys: [RedisArgument], _ arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand(evalsha: sha, keys: keys, arguments: arguments)
    }

    /// Sends one command and decodes its reply on the connection's loop; the caller resumes
    /// straight from there (no promise and future in between).
    private func reply<Reply: Sendable>(
        to command: RedisCommand, decoding decode: @escaping @Sendable (RESPReply) throws -> Reply
    ) async throws -> Reply {
        let slot = currentSlot()
        return try await withUnsafeThrowingContinuation { continuation in
            let handler = RedisReplyHandler.inPlace { result in
                switch result {
                case .failure(let error):
                    continuation.resume(throwing: error)
                case .success(let reply):
                    if let message = reply.errorMessage {
                        continuation.resume(throwing: RedisError(.server, message))
                        return
                    }
                    continuation.resume(with: Result { try decode(reply) })
                }
            }
            if slot.eventLoop.inEventLoop {
                slot.value.send(command, handler: handler)
            } else {
                slot.eventLoop.execute { slot.value.send(command, handler: handler) }
            }
        }
    }

    private func reply(to command: RedisCommand) -> EventLoopFuture<RESPValue> {
        let slot = currentSlot()
        if slot.eventLoop.inEventLoop {
            return Self.enqueue(command, on: slot)
        }
        let promise = slot.eventLoop.makePromise(of: RESPValue.self)
        slot.eventLoop.execute { slot.value.send(command, promise: promise) }
        return promise.futureResult
    }

    private static func enqueue(_ command: RedisCommand, on slot: NIOLoopBoundBox<RedisConnectionSlot>) -> EventLoopFuture<RESPValue> {
        let promise = slot.eventLoop.makePromise(of: RESPValue.self)
        slot.value.send(command, promise: promise)
        return promise.futureResult
    }

    /// The slot of the loop we run on, or the group's next loop.
    private func currentSlot() -> NIOLoopBoundBox<RedisConnectionSlot> {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let slot = slots[ObjectIdentifier(current)] {
            return slot
        }
        return slots[ObjectIdentifier(group.next())]!
    }
}
