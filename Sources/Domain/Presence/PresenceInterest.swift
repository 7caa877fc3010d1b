import NIOCore
import Storage
import Synchronization

/// Which local streams watch which users, and the newest presence this instance knows of each
/// of them: the routing of pub/sub changes to outboxes.
///
/// Routing is by interest: the instance subscribes to one Redis channel per user its streams
/// watch (reference-counted here: one SUBSCRIBE when the first local stream starts watching,
/// none for the next), so an instance receives only changes somebody on it waits for, and a
/// change costs Redis one delivery per instance that cares. Shard channels would send an
/// instance every change of a shard as soon as one of its users is watched; with 20,000 streams
/// watching 10 users each, every shard would be watched and every change reach every instance.
///
/// A user nobody watches any more lingers (still subscribed, its state kept) until
/// `lingeringUsers` newer ones push it out, least recently watched first: a reconnecting
/// client's snapshot then comes from memory. Known states are the cache in admin stats (hits:
/// snapshot entries answered from memory; misses: read from Redis).
final class PresenceInterest: Sendable {
    fileprivate struct State {
        var watchers: [String: [ObjectIdentifier: PresenceOutbox]] = [:]
        var known: [String: PresenceState] = [:]
        /// Users nobody watches, still subscribed, with when they were last watched.
        var lingering: [String: UInt64] = [:]
        var stamp: UInt64 = 0
        var hits = 0
        var misses = 0
    }

    private let state = Mutex(State())
    private let channels: RedisChannelSet
    private let channelOf: @Sendable (String) -> String
    private let lingeringUsers: Int
    /// Hands an outbox with changes that are not due yet to the ticker.
    private let schedule: @Sendable (PresenceOutbox) -> Void

    init(channels: RedisChannelSet, channelOf: @escaping @Sendable (String) -> String, lingeringUsers: Int,
         schedule: @escaping @Sendable (PresenceOutbox) -> Void) {
        self.channels = channels
        self.channelOf = channelOf
        self.lingeringUsers = lingeringUsers
        self.schedule = schedule
    }

    /// `outbox` now watches `new` instead of `old`. Returns the channels' confirmation and the
    /// users whose state this instance does not know and must read (then `snapshot`).
    func watch(_ outbox: PresenceOutbox, old: Set<String>, new: Set<String>) -> (subscribed: EventLoopFuture<Void>, read: [String]) {
        let id = ObjectIdentifier(outbox)
        outbox.retain(new)
        return state.withLock { state in
            for user in old.subtracting(new) { state.unwatch(user, id) }
            var fresh: [String] = []
            var read: [String] = []
            for user in new {
                if state.watchers[user] == nil, state.lingering.removeValue(forKey: user) == nil { fresh.append(user) }
                state.watchers[user, default: [:]][id] = outbox
                if state.known[user] != nil {
                    state.hits += 1
                } else {
                    state.misses += 1
                    read.append(user)
                }
            }
            let evicted = state.evict(over: lingeringUsers)
            // Under the lock, so the subscriber's loop sees subscribes and unsubscribes in order.
            if !evicted.isEmpty { channels.unsubscribe(evicted.map(channelOf)) }
            return (channels.subscribe(fresh.map(channelOf)), read)
        }
    }

    /// Queues for `outbox`, as one message at once, the newest known state of each of `users`
    /// it still watches, `read` (from Redis) included and kept when newer than what is known.
    func snapshot(_ users: Set<String>, read: [String: PresenceState], for outbox: PresenceOutbox) {
        let id = ObjectIdentifier(outbox)
        state.withLock { state in
            var snapshot: [(user: String, state: PresenceState)] = []
            for user in users where state.watchers[user]?[id] != nil {
                var newest = state.known[user]
                if let read = read[user], read.version > newest?.version ?? -1 {
                    newest = read
                    state.known[user] = read
                }
                if let newest { snapshot.append((user, newest)) }
            }
            if !snapshot.isEmpty, outbox.offer(snapshot, urgent: true) { schedule(outbox) }
        }
    }

    /// A change published on a watched user's channel: queued for every local watcher.
    func deliver(_ change: PresenceState, of user: String) {
        state.withLock { state in
            guard state.watchers[user] != nil || state.lingering[user] != nil else { return }
            if let known = state.known[user], known.version >= change.version { return }
            state.known[user] = change
            for outbox in (state.watchers[user] ?? [:]).values where outbox.offer(change, of: user) { schedule(outbox) }
        }
    }

    /// `outbox`'s stream ended.
    func forget(_ outbox: PresenceOutbox, watching users: Set<String>) {
        state.withLock { state in
            for user in users { state.unwatch(user, ObjectIdentifier(outbox)) }
            let evicted = state.evict(over: lingeringUsers)
            if !evicted.isEmpty { channels.unsubscribe(evicted.map(channelOf)) }
        }
    }

    /// Every user this instance follows (after a lost subscriber connection: reread them all).
    var followed: [String] { state.withLock { Array($0.watchers.keys) + Array($0.lingering.keys) } }

    var statistics: CacheStatistics {
        state.withLock { CacheStatistics(entries: $0.known.count, hits: $0.hits, misses: $0.misses) }
    }
}

extension PresenceInterest.State {
    fileprivate mutating func unwatch(_ user: String, _ id: ObjectIdentifier) {
        watchers[user]?[id] = nil
        guard watchers[user]?.isEmpty == true else { return }
        watchers[user] = nil
        stamp += 1
        lingering[user] = stamp
    }

    /// The least recently watched lingering users past `limit` (a quarter more at once, so
    /// eviction sorts rarely); they are no longer followed.
    fileprivate mutating func evict(over limit: Int) -> [String] {
        guard lingering.count > limit else { return [] }
        let excess = lingering.count - limit + limit / 4
        let oldest = lingering.sorted { $0.value < $1.value }.prefix(excess).map(\.key)
        for user in oldest {
            lingering[user] = nil
            known[user] = nil
        }
        return oldest
    }
}
