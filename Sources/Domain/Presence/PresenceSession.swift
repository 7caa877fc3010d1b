public import Codec
import Foundation
import NIOCore
import Synchronization

/// One presence stream after its `Hello`: one device of one user, the users it watches and its
/// outbox. The stream's reader hands it each client message; its writer sends what `outbox`
/// gives; `close` when the stream ends, however it ends.
public final class PresenceSession: Sendable {
    struct State {
        var status: Tally_V1_PresenceStatus = .online
        var activity = ""
        var watching: Set<String> = []
        var lastSeen = ContinuousClock.now
        var closed = false
    }

    public let user: String
    public let device: String
    /// Tells this stream's device apart from an earlier stream of the same device.
    let id: String
    public let outbox: PresenceOutbox
    let presence: Presence
    /// Ends the stream from outside its task (timeout, stalled writer, takeover) with a status.
    let terminate: @Sendable (RPCError) -> Void
    let state = Mutex(State())

    init(user: String, device: String, presence: Presence, terminate: @escaping @Sendable (RPCError) -> Void) {
        self.user = user
        self.device = device
        self.id = UUID().uuidString
        self.presence = presence
        self.terminate = terminate
        self.outbox = PresenceOutbox(interval: presence.configuration.interval, stallLimit: presence.configuration.timeout,
                                     terminate: terminate)
    }

    /// One client message after the `Hello`.
    public func handle(_ message: Tally_V1_PresenceClientMessage) async throws {
        switch message.kind {
        case .heartbeat:
            let (status, activity) = state.withLock { ($0.status, $0.activity) }
            try await touch(status: status, activity: activity)
        case .status(let update):
            try Self.check(update, maxActivityBytes: presence.configuration.maxActivityBytes)
            state.withLock { ($0.status, $0.activity) = (update.status, update.activity) }
            try await touch(status: update.status, activity: update.activity)
        case .subscribe(let subscribe):
            try await presence.subscribe(self, to: subscribe.userIds)
        case .hello:
            throw RPCError(.failedPrecondition, "hello: only the first message of a stream may be a Hello")
        case nil:
            throw RPCError(.invalidArgument, "kind: empty message")
        }
    }

    /// A status change a client may send: a known status, an activity within the limit.
    package static func check(_ update: Tally_V1_StatusUpdate, maxActivityBytes limit: Int) throws(RPCError) {
        guard [.online, .away, .busy, .offline].contains(update.status) else {
            throw RPCError(.invalidArgument, "status.status: must be ONLINE, AWAY, BUSY or OFFLINE")
        }
        guard update.activity.utf8.count <= limit else {
            throw RPCError(.invalidArgument, "status.activity: at most \(limit) bytes, got \(update.activity.utf8.count)")
        }
    }

    /// Tells Redis this device is alive with its status, until a timeout from now.
    func touch(status: Tally_V1_PresenceStatus, activity: String, takeover: Bool = false) async throws {
        state.withLock { $0.lastSeen = .now }
        switch try await presence.touch(self, status: status, activity: activity, takeover: takeover) {
        case .accepted: break
        case .tooManyDevices:
            throw RPCError(.resourceExhausted,
                           "user \(user) already has \(presence.configuration.maxDevices) devices online (PRESENCE_MAX_DEVICES)")
        case .superseded:
            throw RPCError(.aborted, "device \(device) of user \(user) connected on another stream")
        }
    }

    /// The stream ended: its device goes OFFLINE at once (unless another stream took it over).
    public func close() async {
        let watching: Set<String>? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            return state.watching
        }
        guard let watching else { return }
        await presence.closed(self, watching: watching)
    }
}
