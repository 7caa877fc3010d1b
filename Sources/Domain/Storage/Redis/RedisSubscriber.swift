public import NIOCore
import NIOPosix

/// Redis pub/sub for cross-instance notifications (leaderboard changes, presence).
///
/// One dedicated connection (a subscribed connection can run no other command). It reconnects
/// with backoff after a loss and subscribes again to every channel someone listens to; messages
/// published while it was away are lost, as pub/sub is at-most-once: use it for
/// notifications whose truth lives elsewhere.
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

/// The subscriber's loop-bound state: listeners per channel and the connection.
final class SubscriberState {
    private let configuration: RedisConfiguration
    private let loop: any EventLoop
    private var listeners: [String: [Int: AsyncStream<[UInt8]>.Continuation]] = [:]
    private var confirmed: Set<String> = []
    private var nextID = 0
    private var connection: RedisConnection?
    private var connecting = false
    private var isShutDown = false
    private var reconnectDelay: TimeAmount

    init(configuration: RedisConfiguration, loop: any EventLoop) {
        self.configuration = configuration
        self.loop = loop
        self.reconnectDelay = TimeAmount(configuration.minReconnectDelay)
    }

    var allConfirmed: Bool { Set(listeners.keys).isSubset(of: confirmed) }

    func add(_ continuation: AsyncStream<[UInt8]>.Continuation, channel: String) -> Int {
        nextID += 1
        let isNewChannel = listeners[channel] == nil
        listeners[channel, default: [:]][nextID] = continuation
        if isShutDown {
            continuation.finish()
        } else if let connection {
            if isNewChannel { connection.sendWithoutReply(RedisCommand("SUBSCRIBE", RedisArgument(channel))) }
        } else {
            connect()
        }
        return nextID
    }

    func remove(_ id: Int, channel: String) {
        listeners[channel]?[id] = nil
        if listeners[channel]?.isEmpty == true {
            listeners[channel] = nil
            confirmed.remove(channel)
            connection?.sendWithoutReply(RedisCommand("UNSUBSCRIBE", RedisArgument(channel)))
        }
    }

    func shutdown() {
        isShutDown = true
        connection?.close()
        for channel in listeners.values { for continuation in channel.values { continuation.finish() } }
        listeners = [:]
    }

    private func connect() {
        guard !connecting, connection == nil, !isShutDown else { return }
        connecting = true
        let (connection, channel) = RedisConnection.open(configuration, on: loop)
        channel
            .hop(to: loop)
            .assumeIsolated()
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let channel): self.connected(connection, channel)
                case .failure: self.scheduleReconnect()
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
            self.confirmed = []
            self.scheduleReconnect()
        }
        if let password = configuration.password {
            var arguments = [RedisArgument(password)]
            if let username = configuration.username { arguments.insert(RedisArgument(username), at: 0) }
            connection.sendWithoutReply(RedisCommand("AUTH", arguments))
        }
        connection.onPush = { [weak self] value in self?.received(value) }
        let channels = Array(listeners.keys)
        if !channels.isEmpty {
            connection.sendWithoutReply(RedisCommand("SUBSCRIBE", channels.map { RedisArgument($0) }))
        }
    }

    private func received(_ value: RESPValue) {
        guard let parts = value.array, let kind = parts.first?.string else { return }
        switch kind {
        case "message" where parts.count == 3:
            guard let channel = parts[1].string, let payload = parts[2].bytes else { return }
            for continuation in (listeners[channel] ?? [:]).values { continuation.yield(payload) }
        case "subscribe" where parts.count >= 2:
            if let channel = parts[1].string { confirmed.insert(channel) }
        default:
            break  // unsubscribe confirmations, AUTH's +OK
        }
    }

    private func scheduleReconnect() {
        guard !isShutDown, !listeners.isEmpty else { return }
        let delay = reconnectDelay
        reconnectDelay = min(reconnectDelay * 2, TimeAmount(configuration.maxReconnectDelay))
        loop.assumeIsolated().scheduleTask(in: delay) { self.connect() }
    }
}
