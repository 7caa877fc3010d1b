import NIOCore
import NIOPosix

/// The Redis connection of one event loop: opens it on first use, queues commands while it
/// opens, reopens it after a loss, and backs off after failed attempts.
///
/// Loop-bound (every method runs on `loop`), so a handler running on that loop reaches Redis
/// and gets its reply without any thread hop. While backing off, commands fail at once with
/// `.unavailable`: callers fall back (local limiter, direct Postgres) instead of piling up.
final class RedisConnectionSlot {
    private enum State {
        case idle
        case connecting(queued: [(RedisCommand, RedisReplyHandler)])
        case connected(RedisConnection, any Channel)
        case backingOff(until: NIODeadline)
        case shutDown
    }

    let loop: any EventLoop
    private let configuration: RedisConfiguration
    private var state = State.idle
    private var reconnectDelay: TimeAmount
    /// Connection attempts that failed since the last success (for health and stats).
    private(set) var consecutiveFailures = 0
    /// Acknowledged writes waiting for a `WAIT` (see `sendAcknowledged`).
    var acknowledgements = Acknowledgements()

    init(loop: any EventLoop, configuration: RedisConfiguration) {
        self.loop = loop
        self.configuration = configuration
        self.reconnectDelay = TimeAmount(configuration.minReconnectDelay)
    }

    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// The open connection, if there is one.
    var connection: RedisConnection? {
        if case .connected(let connection, _) = state { return connection }
        return nil
    }

    func send(_ command: RedisCommand, promise: EventLoopPromise<RESPValue>) {
        send(command, handler: .value(promise))
    }

    func send(_ command: RedisCommand, handler: RedisReplyHandler) {
        switch state {
        case .connected(let connection, _):
            connection.send(command, handler: handler)
        case .connecting(var queued):
            guard queued.count < configuration.maxQueuedWhileConnecting else {
                handler.fail(RedisError(.unavailable, "too many commands waiting for a Redis connection"))
                return
            }
            state = .idle  // drop the reference so the append does not copy the array
            queued.append((command, handler))
            state = .connecting(queued: queued)
        case .idle:
            state = .connecting(queued: [(command, handler)])
            connect()
        case .backingOff(let until):
            if until <= .now() {
                state = .connecting(queued: [(command, handler)])
                connect()
            } else {
                handler.fail(RedisError(.unavailable, "Redis at \(configuration.host):\(configuration.port) is unreachable"))
            }
        case .shutDown:
            handler.fail(RedisError(.shutdown, "Redis client is shut down"))
        }
    }

    /// Opens the connection now if none is open (used to warm up and by health checks).
    func ensureConnected() {
        switch state {
        case .idle:
            state = .connecting(queued: [])
            connect()
        case .backingOff(let until) where until <= .now():
            state = .connecting(queued: [])
            connect()
        default:
            break
        }
    }

    func shutdown() {
        let previous = state
        state = .shutDown
        switch previous {
        case .connected(let connection, _):
            connection.close()
        case .connecting(let queued):
            let error = RedisError(.shutdown, "Redis client is shut down")
            for (_, handler) in queued { handler.fail(error) }
            connectionFailed(error)
        default:
            break
        }
    }

    // MARK: connecting

    private func connect() {
        let configuration = self.configuration
        let (connection, channel) = RedisConnection.open(configuration, on: loop)
        channel
            .flatMap { channel in
                Self.handshake(connection, configuration, loop: channel.eventLoop).map { channel }
            }
            .hop(to: loop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): self.connected(connection, channel)
                case .failure(let error): self.connectFailed(error)
                }
            }
    }

    /// AUTH and SELECT before any caller's command.
    private static func handshake(_ connection: RedisConnection, _ configuration: RedisConfiguration, loop: any EventLoop) -> EventLoopFuture<Void> {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(RedisCommand("AUTH", RedisArgument(username), RedisArgument(password)))
            } else {
                commands.append(RedisCommand("AUTH", RedisArgument(password)))
            }
        }
        if configuration.database != 0 {
            commands.append(RedisCommand("SELECT", RedisArgument(configuration.database)))
        }
        let replies = commands.map { command in
            let promise = loop.makePromise(of: RESPValue.self)
            connection.send(command, handler: .value(promise))
            return promise.futureResult.flatMapThrowing { reply in
                if case .error(let message) = reply { throw RedisError(.unavailable, "Redis \(command.name) failed: \(message)") }
            }
        }
        return EventLoopFuture.andAllSucceed(replies, on: loop)
    }

    private func connected(_ connection: RedisConnection, _ channel: any Channel) {
        guard case .connecting(let queued) = state else {
            channel.close(promise: nil)  // shut down meanwhile
            return
        }
        consecutiveFailures = 0
        reconnectDelay = TimeAmount(configuration.minReconnectDelay)
        state = .connected(connection, channel)
        connection.onClose = { [weak self, weak connection] in
            guard let self, case .connected(let current, _) = self.state, current === connection else { return }
            self.state = .idle  // reconnect on the next command
        }
        if !connection.isOpen {
            state = .idle
        }
        for (command, handler) in queued { send(command, handler: handler) }
        connectionOpened()
    }

    private func connectFailed(_ error: any Error) {
        guard case .connecting(let queued) = state else { return }
        consecutiveFailures += 1
        state = .backingOff(until: .now() + jittered(reconnectDelay))
        reconnectDelay = min(reconnectDelay * 2, TimeAmount(configuration.maxReconnectDelay))
        let failure = (error as? RedisError)
            ?? RedisError(.unavailable, "cannot connect to Redis at \(configuration.host):\(configuration.port): \(error)")
        for (_, handler) in queued { handler.fail(failure) }
        connectionFailed(failure)
    }

    /// Spreads reconnects of many loops and instances over +-20% of the delay.
    private func jittered(_ delay: TimeAmount) -> TimeAmount {
        let spread = delay.nanoseconds / 5
        return .nanoseconds(delay.nanoseconds + (spread > 0 ? Int64.random(in: -spread...spread) : 0))
    }
}
