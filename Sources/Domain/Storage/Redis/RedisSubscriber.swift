public import NIOCore
import NIOPosix
import Synchronization

/// Redis pub/sub for cross-instance notifications (leaderboard changes, presence).
///
/// One dedicated connection (a subscribed connection can run no other command). It reconnects
/// with backoff after a loss and subscribes again to every channel someone listens to; messages
/// published while it was away are lost, as pub/sub is at-most-once: use it for
/// notifications whose truth lives elsewhere.
///
/// On a Redis Cluster it uses plain pub/sub on one node: a cluster forwards every `PUBLISH` to
/// all its nodes, so one subscription on any node hears every instance's messages, whichever
/// node they were published on. Sharded pub/sub (`SSUBSCRIBE`) would spread the traffic over
/// the masters but needs a connection per shard and resubscribing per slot as slots move;
/// Tally's channels carry small notifications, far from one node's limit. When its node
/// goes, the subscriber reconnects to the next node of the URL.
public final class RedisSubscriber: Sendable {
    private let state: NIOLoopBoundBox<SubscriberState>

    public init(configuration: RedisConfiguration, group: any EventLoopGroup) {
        let loop = group.next()
        state = NIOLoopBoundBox.makeBoxSendingValue(SubscriberState(configuration: configuration, loop: loop), eventLoop: loop)
    }

    /// Messages published on `channel` from now on, until the sequence is dropped.
    public func messages(on channel: String) -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(1024))
        let state = self.state
        state.eventLoop.execute {
            let id = state.value.add(continuation, channel: channel)
            continuation.onTermination = { _ in
                state.eventLoop.execute { state.value.remove(id, channel: channel) }
            }
        }
        return stream
    }

    /// A listener for a changing set of channels with one handler, for many channels at once
    /// (presence: one channel per watched user). `handler` runs on the subscriber's loop for
    /// each message on a channel of the set; `resubscribed` after a lost connection came back
    /// (messages published meanwhile are lost: reread the truth).
    public func channelSet(
        _ handler: @escaping @Sendable (_ channel: String, _ payload: [UInt8]) -> Void,
        resubscribed: @escaping @Sendable () -> Void = {}
    ) -> RedisChannelSet {
        let set = RedisChannelSet(state: state)
        state.eventLoop.execute { self.state.value.addSink(set.id, handler: handler, resubscribed: resubscribed) }
        return set
    }

    /// Resolves once the subscription to every listened channel is confirmed by Redis, or
    /// the timeout passed (Redis unreachable).
    public func waitUntilSubscribed(timeout: Duration = .seconds(5)) async {
        let state = self.state
        let deadline = ContinuousClock.now + timeout
        while !((try? await state.eventLoop.submit { state.value.allConfirmed }.get()) ?? true), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    public func shutdown() async {
        let state = self.state
        try? await state.eventLoop.submit { state.value.shutdown() }.get()
    }
}

/// Channels added and removed in batches, delivered to one handler (see
/// `RedisSubscriber.channelSet`). Only its channels reach its handler.
public final class RedisChannelSet: Sendable {
    private static let ids = Atomic<Int>(0)
    let id: Int
    private let state: NIOLoopBoundBox<SubscriberState>

    init(state: NIOLoopBoundBox<SubscriberState>) {
        self.state = state
        id = Self.ids.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Subscribes to `channels` (queued on the subscriber's loop in call order, so a caller
    /// holding a lock orders its subscribes and unsubscribes); the future completes once Redis
    /// confirmed each (or the connection is down: then they are subscribed when it comes back).
    public func subscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        let state = self.state
        guard !channels.isEmpty else { return state.eventLoop.makeSucceededVoidFuture() }
        let id = self.id
        let confirmed = state.eventLoop.makePromise(of: Void.self)
        state.eventLoop.execute { state.value.subscribe(channels, sink: id, confirmed: confirmed) }
        return confirmed.futureResult
    }

    /// Unsubscribes from `channels` (no waiting: later messages on them are dropped).
    public func unsubscribe(_ channels: [String]) {
        guard !channels.isEmpty else { return }
        let state = self.state
        let id = self.id
        state.eventLoop.execute { state.value.unsubscribe(channels, sink: id) }
    }
}

/// The subscriber's loop-bound state: listeners per channel and the connection.
final class SubscriberState {
    private let configuration: RedisConfiguration
    private let loop: any EventLoop
    private var listeners: [String: [Int: AsyncStream<[UInt8]>.Continuation]] = [:]
    /// Channel sets: their handlers, and which set listens to each channel.
    private var sinks: [Int: (handler: @Sendable (String, [UInt8]) -> Void, resubscribed: @Sendable () -> Void)] = [:]
    private var sinkChannels: [String: Int] = [:]
    /// Subscriptions waiting for Redis' confirmation: per channel, the waits it completes.
    private var confirmations: [String: [Int]] = [:]
    private var pendingConfirmations: [Int: (remaining: Int, promise: EventLoopPromise<Void>)] = [:]
    private var confirmed: Set<String> = []
    private var nextID = 0
    private var connection: RedisConnection?
    private var connecting = false
    private var isShutDown = false
    private var reconnectDelay: TimeAmount
    /// Where to subscribe: the one Redis, or a cluster's nodes tried in turn.
    private let nodes: [RedisNodeAddress]
    private var nodeIndex = 0

    init(configuration: RedisConfiguration, loop: any EventLoop) {
        self.configuration = configuration
        self.nodes = configuration.isCluster ? configuration.clusterNodes : [RedisNodeAddress(host: configuration.host, port: configuration.port)]
        self.loop = loop
        self.reconnectDelay = TimeAmount(configuration.minReconnectDelay)
    }

    var allConfirmed: Bool { Set(listeners.keys).isSubset(of: confirmed) }

    func addSink(_ id: Int, handler: @escaping @Sendable (String, [UInt8]) -> Void, resubscribed: @escaping @Sendable () -> Void) {
        sinks[id] = (handler, resubscribed)
    }

    func subscribe(_ channels: [String], sink: Int, confirmed promise: EventLoopPromise<Void>) {
        var fresh: [String] = []
        for channel in channels where sinkChannels[channel] == nil {
            sinkChannels[channel] = sink
            if listeners[channel] == nil { fresh.append(channel) }
        }
        guard !fresh.isEmpty, !isShutDown else { return promise.succeed() }
        guard let connection else {
            connect()
            return promise.succeed()  // subscribed on connect; the caller reads the truth anyway
        }
        nextID += 1
        pendingConfirmations[nextID] = (fresh.count, promise)
        for channel in fresh { confirmations[channel, default: []].append(nextID) }
        connection.sendWithoutReply(RedisCommand("SUBSCRIBE", fresh.map { RedisArgument($0) }))
    }

    func unsubscribe(_ channels: [String], sink: Int) {
        var gone: [String] = []
        for channel in channels where sinkChannels[channel] == sink {
            sinkChannels[channel] = nil
            if listeners[channel] == nil {
                gone.append(channel)
                confirmed.remove(channel)
            }
        }
        if !gone.isEmpty { connection?.sendWithoutReply(RedisCommand("UNSUBSCRIBE", gone.map { RedisArgument($0) })) }
    }

    private func confirm(_ channel: String) {
        confirmed.insert(channel)
        guard let waits = confirmations.removeValue(forKey: channel) else { return }
        for wait in waits {
            guard var pending = pendingConfirmations[wait] else { continue }
            pending.remaining -= 1
            if pending.remaining == 0 {
                pendingConfirmations[wait] = nil
                pending.promise.succeed()
            } else {
                pendingConfirmations[wait] = pending
            }
        }
    }

    /// The connection is gone: nobody waits for a confirmation that cannot come.
    private func releaseConfirmations() {
        for pending in pendingConfirmations.values { pending.promise.succeed() }
        pendingConfirmations = [:]
        confirmations = [:]
    }

    func add(_ continuation: AsyncStream<[UInt8]>.Continuation, channel: String) -> Int {
        nextID += 1
        let isNewChannel = listeners[channel] == nil
        listeners[channel, default: [:]][nextID] = continuation
        if isShutDown {
            continuation.finish()
        } else if let connection {
            if isNewChannel && sinkChannels[channel] == nil { connection.sendWithoutReply(RedisCommand("SUBSCRIBE", RedisArgument(channel))) }
        } else {
            connect()
        }
        return nextID
    }

    func remove(_ id: Int, channel: String) {
        listeners[channel]?[id] = nil
        if listeners[channel]?.isEmpty == true {
            listeners[channel] = nil
            guard sinkChannels[channel] == nil else { return }
            confirmed.remove(channel)
            connection?.sendWithoutReply(RedisCommand("UNSUBSCRIBE", RedisArgument(channel)))
        }
    }

    func shutdown() {
        isShutDown = true
        connection?.close()
        for channel in listeners.values { for continuation in channel.values { continuation.finish() } }
        listeners = [:]
        sinkChannels = [:]
        releaseConfirmations()
    }

    private func connect() {
        guard !connecting, connection == nil, !isShutDown else { return }
        connecting = true
        var target = configuration
        let node = nodes[nodeIndex % nodes.count]
        target.host = node.host
        target.port = node.port
        let (connection, channel) = RedisConnection.open(target, on: loop)
        channel
            .hop(to: loop)
            .assumeIsolated()
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let channel): self.connected(connection, channel)
                case .failure:
                    self.nodeIndex += 1
                    self.scheduleReconnect()
                }
            }
    }

    private func connected(_ connection: RedisConnection, _ channel: any Channel) {
        guard !isShutDown, connection.isOpen else {
            channel.close(promise: nil)
            if !isShutDown { scheduleReconnect() }
            return
        }
        reconnectDelay = TimeAmount(configuration.minReconnectDelay)
        self.connection = connection
        connection.onClose = { [weak self] in
            guard let self else { return }
            self.connection = nil
            self.nodeIndex += 1
            self.confirmed = []
            self.releaseConfirmations()
            self.scheduleReconnect()
        }
        if let password = configuration.password {
            var arguments = [RedisArgument(password)]
            if let username = configuration.username { arguments.insert(RedisArgument(username), at: 0) }
            connection.sendWithoutReply(RedisCommand("AUTH", arguments))
        }
        connection.onPush = { [weak self] value in self?.received(value) }
        let channels = Set(listeners.keys).union(sinkChannels.keys)
        if !channels.isEmpty {
            connection.sendWithoutReply(RedisCommand("SUBSCRIBE", channels.map { RedisArgument($0) }))
        }
        if !sinkChannels.isEmpty {
            // After the SUBSCRIBE: each set rereads what it may have missed while away.
            for sink in sinks.values { sink.resubscribed() }
        }
    }

    private func received(_ value: RESPValue) {
        guard let parts = value.array, let kind = parts.first?.string else { return }
        switch kind {
        case "message" where parts.count == 3:
            guard let channel = parts[1].string, let payload = parts[2].bytes else { return }
            for continuation in (listeners[channel] ?? [:]).values { continuation.yield(payload) }
            if let sink = sinkChannels[channel] { sinks[sink]?.handler(channel, payload) }
        case "subscribe" where parts.count >= 2:
            if let channel = parts[1].string { confirm(channel) }
        default:
            break  // unsubscribe confirmations, AUTH's +OK
        }
    }

    private func scheduleReconnect() {
        guard !isShutDown, !listeners.isEmpty || !sinkChannels.isEmpty else { return }
        let delay = reconnectDelay
        reconnectDelay = min(reconnectDelay * 2, TimeAmount(configuration.maxReconnectDelay))
        loop.assumeIsolated().scheduleTask(in: delay) { self.connect() }
    }
}
