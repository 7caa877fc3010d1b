import Storage
import NIOCore
import Synchronization

/// `Rank` answers reused for a short time, so a hot user asking every frame costs one Redis
/// call per TTL, not one per request. An improvement on a board bumps that board's
/// generation, which retires its cached answers on this instance at once (O(1)); other
/// instances' answers may lag by at most the TTL.
final class RankCache: Sendable {
    /// Hashed once when made: the table hashes a key on lookup, on store and when retiring
    /// it, and hashing two strings each time showed up in profiles of `Rank`.
    private struct Key: Hashable {
        let board: BoardID
        let user: ExactID
        let neighbours: Int
        let hash: Int

        init(board: BoardID, user: String, neighbours: Int) {
            self.board = board
            self.user = ExactID(user)
            self.neighbours = neighbours
            var hasher = Hasher()
            hasher.combine(board)
            hasher.combine(user)
            hasher.combine(neighbours)
            hash = hasher.finalize()
        }

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.hash == rhs.hash && lhs.neighbours == rhs.neighbours && lhs.user == rhs.user && lhs.board == rhs.board
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    private struct Entry {
        var window: RankWindow
        var expires: ContinuousClock.Instant
        var generation: Int
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        /// Every store in order, hence in order of expiry (one TTL for all): each store retires
        /// the expired answers at the front, a few at a time, instead of sweeping the whole
        /// table when it fills (a pause of milliseconds on a loop under load).
        var stored = CircularBuffer<(key: Key, expires: ContinuousClock.Instant)>()
        var generations: [BoardID: Int] = [:]
        var hits = 0
        var misses = 0
    }

    private let ttl: Duration
    private let capacity: Int
    private let state = Mutex(State())

    init(ttl: Duration, capacity: Int) {
        self.ttl = ttl
        self.capacity = max(1, capacity)
    }

    func lookup(board: BoardID, user: String, neighbours: Int) -> RankWindow? {
        guard ttl > .zero else { return nil }
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let entry = state.entries[Key(board: board, user: user, neighbours: neighbours)],
                entry.expires > now, entry.generation == state.generations[board, default: 0]
            else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            return entry.window
        }
    }

    func store(_ window: RankWindow, board: BoardID, user: String, neighbours: Int) {
        guard ttl > .zero else { return }
        let now = ContinuousClock.now
        let key = Key(board: board, user: user, neighbours: neighbours)
        state.withLock { state in
            // Expired answers go first; at capacity, the oldest live ones too.
            while let oldest = state.stored.first, oldest.expires <= now || state.entries.count >= capacity {
                state.stored.removeFirst()
                // A key stored again since has a later expiry: that newer answer stays.
                if let index = state.entries.index(forKey: oldest.key), state.entries[index].value.expires == oldest.expires {
                    state.entries.remove(at: index)
                }
            }
            let expires = now + ttl
            state.entries[key] = Entry(window: window, expires: expires, generation: state.generations[board, default: 0])
            state.stored.append((key, expires))
        }
    }

    func invalidate(board: BoardID) {
        state.withLock { $0.generations[board, default: 0] += 1 }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Entries (live or not yet swept), hits and misses; zeros when the cache is off (TTL 0).
    var statistics: CacheStatistics {
        state.withLock { CacheStatistics(entries: $0.entries.count, hits: $0.hits, misses: $0.misses) }
    }
}
