import Codec
import GRPCClient
import Synchronization

/// One `PresenceService/Connect` stream of the load: user `user-<user>`, watching
/// `watching`. Its task opens it (Hello, Subscribe) and reads what the server sends; the
/// loop's driver sends its status changes and heartbeats.
///
/// Its task and the driver both prefer the connection's event loop, so the lock is not
/// contended; it makes the sharing (and the final check's reads) safe.
final class PresenceStream: Sendable {
    struct State {
        var call: ClientCall?
        /// The server answered the Subscribe (its first message): the subscription is in place.
        var ready = false
        var ended = false
        /// The run is ending: a call made from now on is cancelled at once.
        var finishing = false
        var lastSent = PresenceMark.hello
        /// Each watched user's last received state.
        var received: [Int: PresenceMark] = [:]
        /// Each watched user's newest send time measured, so a state received again is not.
        var measuredUpTo: [Int: Int64] = [:]
    }

    let user: Int
    let watching: [Int]
    let state = Mutex(State())

    init(user: Int, watching: [Int]) {
        self.user = user
        self.watching = watching
    }

    static let path = "/tally.v1.PresenceService/Connect"

    /// Opens the stream on `connection` and reads until it ends; `becameReady` runs once when
    /// the server's first message arrived. Returns how it ended (a status name and message).
    func run(on connection: GRPCConnection, metadata: Metadata, statistics: PresenceLoopStatistics,
             becameReady: @Sendable () -> Void) async -> (status: String, message: String) {
        let call: ClientCall
        do {
            call = try connection.makeCall(Self.path, metadata: metadata)
        } catch let error as CallError {
            return (error.code.name, error.status.message)
        } catch {
            return (StatusCode.unknown.name, "\(error)")
        }
        let finishing = state.withLock { state in
            state.call = call
            return state.finishing
        }
        if finishing { call.cancel() }
        var helloBody = Tally_V1_Hello()
        helloBody.userId = "user-\(user)"
        helloBody.device = "load"
        var hello = Tally_V1_PresenceClientMessage()
        hello.kind = .hello(helloBody)
        var subscribeBody = Tally_V1_Subscribe()
        subscribeBody.userIds = watching.map { "user-\($0)" }
        var subscribe = Tally_V1_PresenceClientMessage()
        subscribe.kind = .subscribe(subscribeBody)
        do {
            try await call.send(hello)
            if watching.isEmpty {
                // Nothing to subscribe to, so no snapshot will come to say the stream is in place.
                state.withLock { $0.ready = true }
                becameReady()
            } else {
                try await call.send(subscribe)
            }
            for try await message in call.messages(Tally_V1_PresenceServerMessage.self) {
                let now = PresenceClock.now()
                if receive(message, at: now, statistics: statistics) { becameReady() }
            }
        } catch {
            // The status says why.
        }
        state.withLock { $0.ended = true }
        let status = await call.status()
        return (status.code.name, status.message)
    }

    /// Records a server message; true when it is the first (the stream just became ready).
    private func receive(_ message: Tally_V1_PresenceServerMessage, at now: Int64, statistics: PresenceLoopStatistics) -> Bool {
        var delivered: [Int64] = []
        var repeats = 0
        let first: Bool = state.withLock { state in
            for change in message.changes {
                guard let user = Self.userIndex(change.userId) else { continue }
                state.received[user] = PresenceMark(status: change.status.rawValue, activity: change.activity)
                guard let sentAt = PresenceActivity.sendTime(in: change.activity) else { continue }
                if let measured = state.measuredUpTo[user], measured >= sentAt {
                    repeats += 1
                    continue
                }
                state.measuredUpTo[user] = sentAt
                delivered.append(sentAt)
            }
            defer { state.ready = true }
            return !state.ready
        }
        statistics.record(message: message.changes.count, delivered: delivered, repeats: repeats, receivedAt: now)
        return first
    }

    /// `user-<n>` as n.
    static func userIndex(_ id: String) -> Int? {
        guard id.hasPrefix("user-") else { return nil }
        return Int(id.dropFirst(5))
    }

    // MARK: the driver's side

    /// Sends a status change (its activity the send time), remembered as this user's last.
    /// False when the stream is not open (not ready yet, or ended).
    func sendChange(_ status: Tally_V1_PresenceStatus) async -> Bool {
        let activity = PresenceActivity.encode(sentAt: PresenceClock.now())
        let call: ClientCall? = state.withLock { state in
            guard state.ready, !state.ended, let call = state.call else { return nil }
            state.lastSent = PresenceMark(status: status.rawValue, activity: activity)
            return call
        }
        guard let call else { return false }
        var update = Tally_V1_StatusUpdate()
        update.status = status
        update.activity = activity
        var message = Tally_V1_PresenceClientMessage()
        message.kind = .status(update)
        return (try? await call.send(message)) != nil
    }

    /// Sends a heartbeat; false when the stream is not open.
    func sendHeartbeat() async -> Bool {
        guard let call = state.withLock({ $0.ready && !$0.ended ? $0.call : nil }) else { return false }
        var heartbeat = Tally_V1_Heartbeat()
        heartbeat.clientTimeMs = PresenceClock.now() / 1_000_000
        var message = Tally_V1_PresenceClientMessage()
        message.kind = .heartbeat(heartbeat)
        return (try? await call.send(message)) != nil
    }

    /// Half-closes the request: the server ends the stream with OK.
    func finish() async {
        let call: ClientCall? = state.withLock { state in
            state.finishing = true
            return state.call
        }
        guard let call else { return }
        try? await call.finishSending()
    }

    /// Ends the stream at once (the server did not end it in time).
    func cancel() {
        let call: ClientCall? = state.withLock { state in
            state.finishing = true
            return state.call
        }
        call?.cancel()
    }
}
