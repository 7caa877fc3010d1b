import Codec
import Synchronization

/// The fake presence server's state: each user's presence and who watches it.
final class FakePresenceHub: Sendable {
    typealias Mailbox = AsyncStream<Tally_V1_PresenceServerMessage>.Continuation

    private struct State {
        var presence: [String: Tally_V1_PresenceChange] = [:]
        var mailboxes: [Int: Mailbox] = [:]
        var watching: [Int: [String]] = [:]
        var watchers: [String: Set<Int>] = [:]
        var nextWatcher = 0
    }

    private let state = Mutex(State())
    /// Changes of this user are stored but never forwarded.
    let silenced: String?

    init(silenced: String? = nil) {
        self.silenced = silenced
    }

    func register(_ mailbox: Mailbox) -> Int {
        state.withLock { state in
            defer { state.nextWatcher += 1 }
            state.mailboxes[state.nextWatcher] = mailbox
            return state.nextWatcher
        }
    }

    /// `watcher` now watches `users` (replacing what it watched); their presence goes out at once.
    func watch(_ watcher: Int, users: [String]) {
        state.withLock { state in
            for user in state.watching[watcher] ?? [] { state.watchers[user]?.remove(watcher) }
            state.watching[watcher] = users
            var snapshot = Tally_V1_PresenceServerMessage()
            for user in users {
                state.watchers[user, default: []].insert(watcher)
                snapshot.changes.append(state.presence[user] ?? Self.change(user, .offline, ""))
            }
            state.mailboxes[watcher]?.yield(snapshot)
        }
    }

    func set(_ user: String, status: Tally_V1_PresenceStatus, activity: String) {
        let change = Self.change(user, status, activity)
        state.withLock { state in
            state.presence[user] = change
            guard user != silenced else { return }
            var message = Tally_V1_PresenceServerMessage()
            message.changes = [change]
            for watcher in state.watchers[user] ?? [] { state.mailboxes[watcher]?.yield(message) }
        }
    }

    /// The stream ended: it watches nothing more, and its user is OFFLINE.
    func leave(_ watcher: Int, user: String?) {
        let mailbox: Mailbox? = state.withLock { state in
            for watched in state.watching[watcher] ?? [] { state.watchers[watched]?.remove(watcher) }
            state.watching[watcher] = nil
            return state.mailboxes.removeValue(forKey: watcher)
        }
        mailbox?.finish()
        if let user { set(user, status: .offline, activity: "") }
    }

    private static func change(_ user: String, _ status: Tally_V1_PresenceStatus, _ activity: String) -> Tally_V1_PresenceChange {
        var change = Tally_V1_PresenceChange()
        change.userId = user
        change.status = status
        change.activity = activity
        return change
    }
}
