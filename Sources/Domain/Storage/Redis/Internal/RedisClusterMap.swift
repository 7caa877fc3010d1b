import Synchronization

/// Which node serves each of the cluster's 16,384 slots, as the cluster last said
/// (`CLUSTER SLOTS`), patched by `MOVED` replies between refreshes.
final class RedisClusterMap: Sendable {
    private struct State {
        /// Per slot, the index of its master in `masters`; -1 while unknown.
        var owners = [Int16](repeating: -1, count: RedisKeySlot.count)
        var masters: [RedisNodeAddress] = []
        var refreshedAt: ContinuousClock.Instant?
    }

    /// The nodes named in the URL: where the first map comes from, and the last resort.
    let seeds: [RedisNodeAddress]
    private let state = Mutex(State())

    init(seeds: [RedisNodeAddress]) {
        self.seeds = seeds
    }

    var isEmpty: Bool { state.withLock { $0.masters.isEmpty } }

    var refreshedAt: ContinuousClock.Instant? { state.withLock { $0.refreshedAt } }

    /// The master serving `slot`; for keyless commands (nil) the first known master.
    func node(for slot: Int?) -> RedisNodeAddress? {
        state.withLock { state in
            guard let slot else { return state.masters.first }
            let owner = Int(state.owners[slot])
            return owner >= 0 ? state.masters[owner] : nil
        }
    }

    /// Masters first, then seeds not among them: who to ask for a new map.
    var candidates: [RedisNodeAddress] {
        let masters = state.withLock { $0.masters }
        return masters + seeds.filter { !masters.contains($0) }
    }

    /// `MOVED slot address`: the slot lives elsewhere now.
    func moved(_ slot: Int, to address: RedisNodeAddress) {
        state.withLock { state in
            guard slot >= 0, slot < RedisKeySlot.count else { return }
            if let index = state.masters.firstIndex(of: address) {
                state.owners[slot] = Int16(index)
            } else {
                state.masters.append(address)
                state.owners[slot] = Int16(state.masters.count - 1)
            }
        }
    }

    /// Replaces the map with a `CLUSTER SLOTS` reply: `[start, end, [host, port, id], replicas...]`
    /// per range; an empty host means the node we asked.
    func replace(with reply: RESPValue, askedNode: RedisNodeAddress) throws {
        guard let ranges = reply.array, !ranges.isEmpty else {
            throw RedisError(.unexpectedReply, "CLUSTER SLOTS from \(askedNode) named no slots")
        }
        var fresh = State()
        for range in ranges {
            guard let fields = range.array, fields.count >= 3,
                let start = fields[0].int, let end = fields[1].int, start >= 0, end < RedisKeySlot.count, start <= end,
                let master = fields[2].array, master.count >= 2, let host = master[0].string, let port = master[1].int
            else { throw RedisError(.unexpectedReply, "CLUSTER SLOTS from \(askedNode) is malformed") }
            let address = RedisNodeAddress(host: host.isEmpty ? askedNode.host : host, port: Int(port))
            let index: Int
            if let known = fresh.masters.firstIndex(of: address) {
                index = known
            } else {
                fresh.masters.append(address)
                index = fresh.masters.count - 1
            }
            for slot in Int(start)...Int(end) { fresh.owners[slot] = Int16(index) }
        }
        fresh.refreshedAt = .now
        state.withLock { $0 = fresh }
    }
}
