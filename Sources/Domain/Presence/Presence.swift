public import Codec
public import Logging
public import ServiceLifecycle
public import Storage
import Synchronization
import Units

/// Presence on this instance: its streams' sessions, the limits, and the one task that runs
/// the ticker, the session timeouts and the expiry sweeper. The truth is in Redis, shared by
/// every instance (`PresenceRegistry`); changes reach other instances' watchers over pub/sub
/// (`PresenceInterest`).
///
/// A user's status is the most present of its live devices': ONLINE, then BUSY, then AWAY,
/// then OFFLINE (with the activity of that device; among equals, the latest changed).
public final class Presence: Service, Sendable {
    public let configuration: PresenceConfiguration
    let registry: PresenceRegistry
    let interest: PresenceInterest
    let ticker = PresenceTicker()
    private let sessions = Mutex<[ObjectIdentifier: PresenceSession]>([:])
    private let streams = Atomic<Int>(0)
    /// The subscriber reconnected: every followed user's state is read again.
    private let reread = Atomic<Bool>(false)
    private let logger: Logger

    public init(redis: RedisClient, subscriber: RedisSubscriber, configuration: PresenceConfiguration = .defaults, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let registry = PresenceRegistry(redis: redis, namespace: configuration.namespace)
        self.registry = registry
        let relay = PresenceRelay()
        let channels = subscriber.channelSet(
            { channel, payload in relay.received(channel, payload) }, resubscribed: { relay.resubscribed() })
        let ticker = self.ticker
        interest = PresenceInterest(channels: channels, channelOf: { registry.channel(of: $0) },
                                    lingeringUsers: configuration.lingeringUsers, schedule: { ticker.schedule($0) })
        relay.connect(self)
    }

    /// Streams open on this instance.
    public var openStreams: Int { streams.load(ordering: .relaxed) }

    /// Known users' presence: entries, and snapshot lookups answered from memory or read.
    public var cacheStatistics: CacheStatistics { interest.statistics }

    // MARK: sessions

    /// Starts a stream's session after its `Hello`: the device is ONLINE when this returns.
    /// `terminate` ends the stream from outside its task with a status (timeouts, a client that
    /// stopped reading, another stream taking the device over).
    public func open(_ hello: Tally_V1_Hello, terminate: @escaping @Sendable (RPCError) -> Void) async throws -> PresenceSession {
        let user = hello.userId
        let device = hello.device.isEmpty ? "default" : hello.device
        try Self.checkName(user, field: "hello.user_id")
        try Self.checkName(device, field: "hello.device")
        let open = streams.wrappingAdd(1, ordering: .relaxed).newValue
        guard open <= configuration.maxStreams else {
            streams.wrappingSubtract(1, ordering: .relaxed)
            throw RPCError(.resourceExhausted,
                           "this instance already serves \(configuration.maxStreams) presence streams (PRESENCE_MAX_STREAMS); retry later")
        }
        let session = PresenceSession(user: user, device: device, presence: self, terminate: terminate)
        sessions.withLock { $0[ObjectIdentifier(session)] = session }
        do {
            try await session.touch(status: .online, activity: "", takeover: true)
        } catch {
            await session.close()
            throw error
        }
        return session
    }

    /// The users one stream may watch: at most `max`, each a valid user id.
    package static func checkSubscription(_ users: [String], max: Int) throws {
        guard users.count <= max else {
            throw RPCError(.invalidArgument, "subscribe.user_ids: at most \(max) users, got \(users.count)")
        }
        for user in users { try checkName(user, field: "subscribe.user_ids") }
    }

    /// User ids and device names: 1 to 128 bytes, no control characters.
    package static func checkName(_ name: String, field: String) throws {
        guard !name.isEmpty else { throw RPCError(.invalidArgument, "\(field): required") }
        guard name.utf8.count <= 128 else { throw RPCError(.invalidArgument, "\(field): at most 128 bytes") }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw RPCError(.invalidArgument, "\(field): no control characters")
        }
    }

    func touch(_ session: PresenceSession, status: Tally_V1_PresenceStatus, activity: String, takeover: Bool) async throws
        -> PresenceRegistry.Touch
    {
        let now = PresenceRegistry.nowMs()
        return try await registry.touch(
            user: session.user, device: session.device, session: session.id, status: status, activity: activity,
            deadlineMs: now + configuration.timeout.milliseconds, nowMs: now, maxDevices: configuration.maxDevices,
            takeover: takeover)
    }

    /// `session` now watches `users` (replacing what it watched); their presence now is queued
    /// for it at once, their changes from then on.
    func subscribe(_ session: PresenceSession, to users: [String]) async throws {
        try Self.checkSubscription(users, max: configuration.maxSubscriptions)
        let new = Set(users)
        let old = session.state.withLock { state in
            defer { state.watching = new }
            return state.watching
        }
        let (subscribed, read) = interest.watch(session.outbox, old: old, new: new)
        // Read only once the channels are confirmed, so no change falls between read and channel.
        try? await subscribed.get()
        let states = read.isEmpty ? [:] : try await registry.read(read, nowMs: PresenceRegistry.nowMs())
        interest.snapshot(new, read: states, for: session.outbox)
    }

    /// `session`'s stream ended: its device leaves at once.
    func closed(_ session: PresenceSession, watching: Set<String>) async {
        sessions.withLock { $0[ObjectIdentifier(session)] = nil }
        session.outbox.end()
        interest.forget(session.outbox, watching: watching)
        streams.wrappingSubtract(1, ordering: .relaxed)
        do {
            try await registry.leave(user: session.user, device: session.device, session: session.id, nowMs: PresenceRegistry.nowMs())
        } catch {
            // Its deadline in Redis still expires it within the timeout (the sweepers).
            logger.debug("presence leave failed", metadata: ["user": "\(session.user)", "error": "\(error)"])
        }
    }

    // MARK: the instance's timer

    /// Ticks until shutdown: flushes due outboxes every `tick`; a few times per interval,
    /// ends sessions silent for `timeout` and sweeps expired devices.
    public func run() async throws {
        let sweeper = PresenceSweeper(registry: registry, configuration: configuration, logger: logger)
        var nextSweep = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            ticker.flush()
            let now = ContinuousClock.now
            if now >= nextSweep {
                nextSweep = now + configuration.sweepEvery
                endSilentSessions(now)
                await sweeper.sweep()
                if reread.exchange(false, ordering: .relaxed) { await readFollowed() }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.configuration.tick) }
        }
    }

    private func endSilentSessions(_ now: ContinuousClock.Instant) {
        let silent = sessions.withLock { sessions in
            sessions.values.filter { session in session.state.withLock { now - $0.lastSeen > configuration.timeout && !$0.closed } }
        }
        for session in silent {
            session.outbox.end()
            session.terminate(RPCError(.unavailable, "no heartbeat for \(configuration.timeout.milliseconds) ms: presence session closed"))
        }
    }

    /// After a lost subscriber connection: what was published meanwhile is read from Redis.
    private func readFollowed() async {
        let users = interest.followed
        guard !users.isEmpty, let states = try? await registry.read(users, nowMs: PresenceRegistry.nowMs()) else { return }
        for (user, state) in states { interest.deliver(state, of: user) }
    }

    fileprivate func received(_ channel: String, _ payload: [UInt8]) {
        guard let user = registry.user(ofChannel: channel),
            let state = PresenceState(record: payload, nowMs: PresenceRegistry.nowMs())
        else { return }
        interest.deliver(state, of: user)
    }

    fileprivate func resubscribed() {
        reread.store(true, ordering: .relaxed)
    }
}

/// Passes the subscriber's callbacks to `Presence`, which exists only after the channel set.
private final class PresenceRelay: Sendable {
    private let presence = Mutex<Presence?>(nil)

    func connect(_ presence: Presence) { self.presence.withLock { $0 = presence } }
    func received(_ channel: String, _ payload: [UInt8]) { presence.withLock { $0 }?.received(channel, payload) }
    func resubscribed() { presence.withLock { $0 }?.resubscribed() }
}
