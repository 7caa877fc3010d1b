import NIOCore
import NIOPosix
import Synchronization

/// The cluster half of `RedisClient`: routes each command to the master of its key's slot
/// over the current event loop's connection to that node, and rides out what a cluster
/// answers while it changes.
///
/// `MOVED` patches the slot map, refreshes it in the background and goes to the named node;
/// `ASK` sends `ASKING` and the command to the named node once; `TRYAGAIN`, `CLUSTERDOWN`
/// and a lost or unreachable node (a killed master before its replica took over) refresh the
/// map and retry with backoff until `clusterRetryTime` has passed; `NOSCRIPT` loads the
/// script on that node and runs it again.
final class RedisCluster: Sendable {
    let configuration: RedisConfiguration
    let map: RedisClusterMap
    private let group: any EventLoopGroup
    /// One set of node connections per loop of `group`, keyed by the loop's identity.
    private let connections: [ObjectIdentifier: NIOLoopBoundBox<RedisNodeConnections>]
    /// The refresh under way, which every caller needing a new map waits for.
    private let refreshing = Mutex<Task<Void, Never>?>(nil)

    /// Redirections one command may follow before it fails (a map changing faster than this
    /// is a broken cluster, not a failover).
    private static let maxRedirects = 16
    /// A SHA1 no script has: `EVALSHA` answers `NOSCRIPT`, which loads the script on that node.
    private static let unknownSHA = String(repeating: "0", count: 40)

    init(configuration: RedisConfiguration, group: any EventLoopGroup) {
        self.configuration = configuration
        self.group = group
        self.map = RedisClusterMap(seeds: configuration.clusterNodes)
        var connections: [ObjectIdentifier: NIOLoopBoundBox<RedisNodeConnections>] = [:]
        for loop in group.makeIterator() {
            connections[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                RedisNodeConnections(loop: loop, configuration: configuration), eventLoop: loop)
        }
        self.connections = connections
    }

    // MARK: calls

    /// Runs one command (or script, rebuilt by `command` once its SHA is known) on the master of
    /// its slot, following redirections and retrying while the cluster fails over. `decode`
    /// reads the final reply on the connection's loop (error replies included).
    func call<Reply: Sendable>(
        script: RedisScript? = nil, _ command: @escaping @Sendable () -> RedisCommand,
        decode: @escaping @Sendable (RESPReply) throws -> Reply
    ) async throws -> Reply {
        try await retrying(command()) { address, asking in
            await self.attempt(command(), on: address, asking: asking, decode: decode)
        } loadScript: { address in
            guard let script else { return false }
            try await self.load(script, on: address)
            return true
        }
    }

    /// `call` for a write that counts only once `minReplicasAck` replicas have it: the command
    /// and a `WAIT` go to the node back to back; too few confirmations throw `.unavailable`.
    func callAcknowledged(script: RedisScript? = nil, _ command: @escaping @Sendable () -> RedisCommand) async throws -> RESPValue {
        let replicas = configuration.minReplicasAck
        let timeout = configuration.replicaAckTimeout
        return try await retrying(command()) { address, asking in
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Attempt<RESPValue>, Never>) in
                self.onLoop(address, asking: asking) { slot in
                    slot.sendAcknowledged(command(), replicas: replicas, timeout: timeout) { result in
                        switch result {
                        case .failure(let error):
                            continuation.resume(returning: Self.attempt(failedWith: error))
                        case .success(let (reply, confirmed)):
                            if case .error(let message) = reply, let instruction = RedisClusterReply(message, from: address) {
                                continuation.resume(returning: .instruction(instruction))
                            } else if case .error = reply {
                                continuation.resume(returning: .done(.success(reply)))
                            } else if confirmed < replicas {
                                continuation.resume(returning: .done(.failure(RedisError(
                                    .unavailable, "\(confirmed) of \(replicas) replicas of \(address) confirmed the write within \(timeout)"))))
                            } else {
                                continuation.resume(returning: .done(.success(reply)))
                            }
                        }
                    }
                }
            }
        } loadScript: { address in
            guard let script else { return false }
            try await self.load(script, on: address)
            return true
        }
    }

    /// Commands sent at once, each to its node (one write per node); those answered with a
    /// redirection or lost with a node go again one by one through `call`. Replies in order.
    func pipeline(script: RedisScript? = nil, _ commands: [RedisCommand]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var addresses: [RedisNodeAddress] = []
        addresses.reserveCapacity(commands.count)
        for command in commands { addresses.append(try await node(for: command.routingKey.map(RedisKeySlot.of))) }
        let box = currentConnections()
        let send: @Sendable () -> [EventLoopFuture<RESPValue>] = { [addresses] in
            zip(commands, addresses).map { command, address in
                let promise = box.eventLoop.makePromise(of: RESPValue.self)
                box.value.slot(for: address).send(command, promise: promise)
                return promise.futureResult
            }
        }
        let futures = box.eventLoop.inEventLoop ? send() : try await box.eventLoop.submit(send).get()
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        for (index, future) in futures.enumerated() {
            let first: RESPValue?
            do {
                first = try await future.get()
            } catch let error as RedisError where error.kind == .unavailable || error.kind == .timeout {
                first = nil
            }
            if let first, !Self.needsAnotherTry(first, from: addresses[index]) {
                replies.append(first)
            } else {
                let command = commands[index]
                let rebuilt: @Sendable () -> RedisCommand
                if let script {
                    rebuilt = { command.withSHA(script.sha ?? Self.unknownSHA) }
                } else {
                    rebuilt = { command }
                }
                replies.append(try await call(script: script, rebuilt) { $0.value })
            }
        }
        return replies
    }

    /// `EVALSHA` of `script`, with its SHA once known (a node without it answers `NOSCRIPT`).
    static func evalsha(_ script: RedisScript, _ keys: [RedisArgument], _ arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand(evalsha: script.sha ?? unknownSHA, keys: keys, arguments: arguments)
    }

    // MARK: the retry loop

    private enum Attempt<Reply: Sendable>: Sendable {
        case done(Result<Reply, any Error>)
        case instruction(RedisClusterReply)
        /// The node could not be reached or was lost: refresh the map and try again.
        case lost(RedisError)
    }

    private func retrying<Reply: Sendable>(
        _ first: RedisCommand,
        attempt: (_ address: RedisNodeAddress, _ asking: Bool) async -> Attempt<Reply>,
        loadScript: (_ address: RedisNodeAddress) async throws -> Bool
    ) async throws -> Reply {
        let slot = first.routingKey.map(RedisKeySlot.of)
        let deadline = ContinuousClock.now + configuration.clusterRetryTime
        var delay = Duration.milliseconds(10)
        var redirects = 0
        var asking: RedisNodeAddress?
        while true {
            let address: RedisNodeAddress
            if let asking { address = asking } else { address = try await node(for: slot) }
            let outcome = await attempt(address, asking != nil)
            asking = nil
            let failure: RedisError
            switch outcome {
            case .done(let result):
                return try result.get()
            case .instruction(.moved(let movedSlot, let to)):
                map.moved(movedSlot, to: to)
                refreshInBackground()
                redirects += 1
                guard redirects <= Self.maxRedirects else { throw RedisError(.unavailable, "\(first.name): too many cluster redirections") }
                continue
            case .instruction(.ask(let to)):
                asking = to
                redirects += 1
                guard redirects <= Self.maxRedirects else { throw RedisError(.unavailable, "\(first.name): too many cluster redirections") }
                continue
            case .instruction(.noScript):
                guard try await loadScript(address) else { throw RedisError(.server, "NOSCRIPT from \(address) for a plain command") }
                redirects += 1
                guard redirects <= Self.maxRedirects else { throw RedisError(.unavailable, "\(first.name): scripts keep disappearing") }
                continue
            case .instruction(.tryAgain):
                failure = RedisError(.unavailable, "Redis Cluster is failing over or resharding (\(first.name) on \(address))")
            case .lost(let error):
                failure = error
            }
            guard ContinuousClock.now + delay < deadline else { throw failure }
            try? await Task.sleep(for: delay)
            await refresh()
            delay = min(delay * 2, .milliseconds(250))
        }
    }

    /// One try of one command on `address` (after `ASKING` when asked to).
    private func attempt<Reply: Sendable>(
        _ command: RedisCommand, on address: RedisNodeAddress, asking: Bool,
        decode: @escaping @Sendable (RESPReply) throws -> Reply
    ) async -> Attempt<Reply> {
        await withUnsafeContinuation { continuation in
            onLoop(address, asking: asking) { slot in
                slot.send(command, handler: .inPlace { result in
                    switch result {
                    case .failure(let error):
                        continuation.resume(returning: Self.attempt(failedWith: error))
                    case .success(let reply):
                        if let message = reply.errorMessage, let instruction = RedisClusterReply(message, from: address) {
                            continuation.resume(returning: .instruction(instruction))
                        } else {
                            continuation.resume(returning: .done(Result { try decode(reply) }))
                        }
                    }
                })
            }
        }
    }

    private static func attempt<Reply>(failedWith error: RedisError) -> Attempt<Reply> {
        error.kind == .unavailable || error.kind == .timeout ? .lost(error) : .done(.failure(error))
    }

    private static func needsAnotherTry(_ reply: RESPValue, from address: RedisNodeAddress) -> Bool {
        if case .error(let message) = reply { return RedisClusterReply(message, from: address) != nil }
        return false
    }

    /// Runs `body` with this loop's connection to `address` on its loop, `ASKING` sent first
    /// when asked to (back to back, so nothing comes between them on the connection).
    private func onLoop(_ address: RedisNodeAddress, asking: Bool, _ body: @escaping @Sendable (RedisConnectionSlot) -> Void) {
        let box = currentConnections()
        let run: @Sendable () -> Void = {
            let slot = box.value.slot(for: address)
            if asking { slot.send(RedisCommand("ASKING"), handler: .inPlace { _ in }) }
            body(slot)
        }
        if box.eventLoop.inEventLoop { run() } else { box.eventLoop.execute(run) }
    }

    // MARK: nodes, scripts and the map

    /// The master serving `slot`, learning the map first when it is unknown.
    private func node(for slot: Int?) async throws -> RedisNodeAddress {
        if let address = map.node(for: slot) { return address }
        await refresh()
        if let address = map.node(for: slot) { return address }
        guard let seed = map.seeds.first else { throw RedisError(.unavailable, "Redis Cluster has no known node") }
        return seed  // its MOVED names the owner
    }

    /// One command to one node, no routing (CLUSTER SLOTS, SCRIPT LOAD).
    func sendDirect(_ command: RedisCommand, to address: RedisNodeAddress) async throws -> RESPValue {
        let reply = await attempt(command, on: address, asking: false) { $0.value }
        switch reply {
        case .done(let result):
            let value = try result.get()
            if case .error(let message) = value { throw RedisError(.server, message) }
            return value
        case .instruction(let instruction):
            throw RedisError(.unavailable, "\(address) answered \(command.name) with \(instruction)")
        case .lost(let error):
            throw error
        }
    }

    private func load(_ script: RedisScript, on address: RedisNodeAddress) async throws {
        let reply = try await sendDirect(RedisCommand("SCRIPT", "LOAD", RedisArgument(script.source)), to: address)
        guard let sha = reply.string else { throw RedisError(.unexpectedReply, "SCRIPT LOAD of \(script.name) returned no SHA1") }
        script.remember(sha: sha)
    }

    /// Learns the slot map again from the first node that answers (masters, then the seeds).
    /// Concurrent callers share one refresh; one finished in the last 50 ms is fresh enough.
    func refresh() async {
        if let last = map.refreshedAt, ContinuousClock.now - last < .milliseconds(50) { return }
        let task = refreshing.withLock { current in
            if let current { return current }
            let task = Task {
                await self.loadMap()
                self.refreshing.withLock { $0 = nil }
            }
            current = task
            return task
        }
        await task.value
    }

    private func refreshInBackground() {
        Task { await self.refresh() }
    }

    private func loadMap() async {
        for address in map.candidates {
            guard let reply = try? await sendDirect(RedisCommand("CLUSTER", "SLOTS"), to: address) else { continue }
            if (try? map.replace(with: reply, askedNode: address)) != nil { return }
        }
    }

    // MARK: lifecycle

    var hasOpenConnection: Bool {
        get async {
            for box in connections.values {
                if (try? await box.eventLoop.submit { box.value.isConnected }.get()) == true { return true }
            }
            return false
        }
    }

    var writesAwaitingReplicas: Int {
        get async {
            var count = 0
            for box in connections.values {
                count += (try? await box.eventLoop.submit { box.value.writesAwaitingReplicas }.get()) ?? 0
            }
            return count
        }
    }

    func shutdown() async {
        for box in connections.values {
            try? await box.eventLoop.submit { box.value.shutdown() }.get()
        }
    }

    /// The connections of the loop we run on, or of the group's next loop.
    private func currentConnections() -> NIOLoopBoundBox<RedisNodeConnections> {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let box = connections[ObjectIdentifier(current)] {
            return box
        }
        return connections[ObjectIdentifier(group.next())]!
    }
}
