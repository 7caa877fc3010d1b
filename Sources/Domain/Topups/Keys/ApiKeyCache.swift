import Synchronization

/// Resolved keys by hash, each kept `ttl`; unknown hashes are remembered briefly too, so a
/// client hammering with a well-formed unknown key does not hammer Postgres.
final class ApiKeyCache: Sendable {
    private struct Entry {
        var key: ResolvedApiKey?
        var until: ContinuousClock.Instant
    }

    private struct State {
        var entries: [[UInt8]: Entry] = [:]
        var hits = 0
        var misses = 0
    }

    private let ttl: Duration
    private let negativeTTL: Duration
    private let capacity: Int
    private let state = Mutex(State())

    init(ttl: Duration, negativeTTL: Duration = .seconds(2), capacity: Int = 100_000) {
        self.ttl = ttl
        self.negativeTTL = min(ttl, negativeTTL)
        self.capacity = capacity
    }

    /// The cached answer: `.some(nil)` for a key known not to be valid, nil when not cached.
    func lookup(_ hash: [UInt8]) -> ResolvedApiKey?? {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let entry = state.entries[hash], entry.until > now else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            return .some(entry.key)
        }
    }

    func store(_ key: ResolvedApiKey?, for hash: [UInt8]) {
        let until = ContinuousClock.now + (key == nil ? negativeTTL : ttl)
        state.withLock { state in
            // Full: start over rather than track recency; keys are few next to the capacity.
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[hash] = Entry(key: key, until: until)
        }
    }

    func remove(keyID: String) {
        state.withLock { state in
            state.entries = state.entries.filter { $0.value.key?.keyID != keyID }
        }
    }

    var statistics: CacheStatistics {
        state.withLock { CacheStatistics(entries: $0.entries.count, hits: $0.hits, misses: $0.misses) }
    }
}
