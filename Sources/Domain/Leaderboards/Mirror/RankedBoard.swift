import Storage
/// One board's users in board order, in memory: a user's rank and the entries around it in
/// O(log n), a best score merged (or, on latest-score boards, an entry replaced) in
/// O(log n + block).
///
/// The order is exactly the Redis sorted set's read order (`ZREVRANGE` over
/// `BoardMember.encoded`): score high to low, then the earlier achievement (the time as the
/// member's clamped 13-digit prefix), then the user id's bytes high to low. Entries live in
/// sorted blocks of a few hundred, with their sizes in one contiguous array, so a rank is a
/// binary search over blocks, one within a block and a sum of block sizes; a merge moves at
/// most one block's entries. Times are clamped to the member's range on the way in, as Redis
/// holds them, so comparisons need not. Not thread-safe: `BoardMirror` holds it behind a lock.
struct RankedBoard {
    struct Entry: Equatable {
        var userID: String
        var score: Int64
        var achievedAtMs: Int64

        static func == (a: Entry, b: Entry) -> Bool {
            a.score == b.score && a.achievedAtMs == b.achievedAtMs && a.userID.utf8.elementsEqual(b.userID.utf8)
        }
    }

    /// A block splits in two when it grows past twice this.
    static let blockSize = 256

    private var blocks: [[Entry]] = []
    /// `blocks[i].count`, contiguous: summing a prefix of it is the hot part of `rank`.
    private var sizes: [Int] = []
    /// Each user's place in the order (by the id's bytes, as Redis tells users apart): their
    /// best, or on a latest-score board their latest.
    private var best: [ExactID: Key] = [:]

    private struct Key {
        var score: Int64
        var achievedAtMs: Int64
    }

    var count: Int { best.count }

    init() {}

    /// A board from entries in any order; a user listed more than once keeps their best.
    ///
    /// Loads read the sorted set in board order, so the entries usually come sorted: then
    /// the board is built in one pass, without a sort or a second copy (a million users are
    /// a few seconds' load, and peak memory is what bounds `maxUsers`).
    init(_ entries: consuming [Entry]) {
        var entries = entries
        for index in entries.indices { entries[index].achievedAtMs = BoardMember.clampedTime(entries[index].achievedAtMs) }
        if entries.indices.dropFirst().contains(where: { Self.precedes(entries[$0], entries[$0 - 1]) }) {
            entries.sort(by: Self.precedes)
        }
        best.reserveCapacity(entries.count)
        var block: [Entry] = []
        block.reserveCapacity(Self.blockSize)
        for entry in entries {
            // In board order a user's first entry is their best; a later one is an older copy.
            let user = ExactID(entry.userID)
            guard best[user] == nil else { continue }
            best[user] = Key(score: entry.score, achievedAtMs: entry.achievedAtMs)
            block.append(entry)
            if block.count == Self.blockSize {
                blocks.append(block)
                sizes.append(block.count)
                block.removeAll(keepingCapacity: true)
            }
        }
        if !block.isEmpty {
            blocks.append(block)
            sizes.append(block.count)
        }
    }

    /// Whether `a` is ranked before `b` (both with clamped times).
    static func precedes(_ a: Entry, _ b: Entry) -> Bool {
        if a.score != b.score { return a.score > b.score }
        if a.achievedAtMs != b.achievedAtMs { return a.achievedAtMs < b.achievedAtMs }
        // Same score and time prefix: Redis compares the rest of the member, the user id, bytewise.
        return b.userID.utf8.lexicographicallyPrecedes(a.userID.utf8)
    }

    /// Merges a best score: kept when it beats the user's current one (ties: the earlier).
    /// Returns whether it did.
    @discardableResult
    mutating func merge(_ entry: Entry) -> Bool {
        var entry = entry
        entry.achievedAtMs = BoardMember.clampedTime(entry.achievedAtMs)
        let user = ExactID(entry.userID)
        if let key = best[user] {
            let current = Entry(userID: entry.userID, score: key.score, achievedAtMs: key.achievedAtMs)
            guard Self.precedes(entry, current) else { return false }
            remove(current)
        }
        insert(entry)
        best[user] = Key(score: entry.score, achievedAtMs: entry.achievedAtMs)
        return true
    }

    /// Replaces the user's entry, better or worse (latest-score boards; `BoardMirror` decides
    /// which write is newer).
    mutating func replace(_ entry: Entry) {
        var entry = entry
        entry.achievedAtMs = BoardMember.clampedTime(entry.achievedAtMs)
        let user = ExactID(entry.userID)
        if let key = best[user] {
            remove(Entry(userID: entry.userID, score: key.score, achievedAtMs: key.achievedAtMs))
        }
        insert(entry)
        best[user] = Key(score: entry.score, achievedAtMs: entry.achievedAtMs)
    }

    /// The user's 0-based rank; nil when they have no score here.
    func rank(of user: String) -> Int? {
        guard let key = best[ExactID(user)] else { return nil }
        let (block, offset) = position(of: Entry(userID: user, score: key.score, achievedAtMs: key.achievedAtMs))
        return entries(before: block) + offset
    }

    /// How many entries rank before `key` or are it: where a `Top` page after a cursor on
    /// `key` starts, also when the cursor's entry has moved since (the top script's rule).
    func start(after key: Entry) -> Int {
        guard !blocks.isEmpty else { return 0 }
        var key = key
        key.achievedAtMs = BoardMember.clampedTime(key.achievedAtMs)
        let (block, offset) = position(of: key)
        let present = offset < blocks[block].count && blocks[block][offset] == key
        return entries(before: block) + offset + (present ? 1 : 0)
    }

    /// Entries in the blocks before `block`: the sum that makes a rank.
    private func entries(before block: Int) -> Int {
        sizes.withUnsafeBufferPointer { sizes in
            var count = 0
            for index in 0..<block { count &+= sizes[index] }
            return count
        }
    }

    /// Up to `limit` entries from the 0-based rank `first` on, ranked 1-based.
    func entries(from first: Int, limit: Int) -> [LeaderboardEntry] {
        guard first >= 0, limit > 0, first < count else { return [] }
        var result: [LeaderboardEntry] = []
        result.reserveCapacity(min(limit, count - first))
        var block = 0
        var skipped = 0
        while block < sizes.count, skipped + sizes[block] <= first {
            skipped += sizes[block]
            block += 1
        }
        var offset = first - skipped
        var rank = first + 1
        while block < blocks.count, result.count < limit {
            let entries = blocks[block]
            while offset < entries.count, result.count < limit {
                let entry = entries[offset]
                result.append(LeaderboardEntry(rank: rank, userID: entry.userID, score: entry.score, achievedAtMs: entry.achievedAtMs))
                rank += 1
                offset += 1
            }
            block += 1
            offset = 0
        }
        return result
    }

    /// A user's entry among up to `neighbours` on each side, in one array: what a reader
    /// copies out under the mirror's lock (one allocation), split into a `RankWindow` after.
    struct Neighbourhood {
        var entries: [LeaderboardEntry]
        /// The user's place in `entries`.
        var index: Int
        var total: Int

        var window: RankWindow {
            RankWindow(entry: entries[index], above: Array(entries[..<index]), below: Array(entries[(index + 1)...]), total: total)
        }
    }

    /// The user's entry with up to `neighbours` on each side; nil when they have no score.
    func neighbourhood(of user: String, neighbours: Int) -> Neighbourhood? {
        guard let rank0 = rank(of: user) else { return nil }
        let first = max(0, rank0 - neighbours)
        return Neighbourhood(entries: entries(from: first, limit: rank0 - first + neighbours + 1), index: rank0 - first, total: count)
    }

    func window(of user: String, neighbours: Int) -> RankWindow? { neighbourhood(of: user, neighbours: neighbours)?.window }

    /// Every entry in board order (tests and checks).
    var all: [Entry] { blocks.flatMap { $0 } }

    // MARK: blocks

    /// The block that holds (or would hold) `entry`, and its offset there.
    private func position(of entry: Entry) -> (block: Int, offset: Int) {
        guard !blocks.isEmpty else { return (0, 0) }
        // The first block whose last entry is not ranked before `entry`; past the end, the last.
        var low = 0
        var high = blocks.count - 1
        while low < high {
            let mid = (low + high) / 2
            if Self.precedes(blocks[mid][blocks[mid].count - 1], entry) { low = mid + 1 } else { high = mid }
        }
        let entries = blocks[low]
        var first = 0
        var last = entries.count
        while first < last {
            let mid = (first + last) / 2
            if Self.precedes(entries[mid], entry) { first = mid + 1 } else { last = mid }
        }
        return (low, first)
    }

    private mutating func insert(_ entry: Entry) {
        guard !blocks.isEmpty else {
            blocks = [[entry]]
            sizes = [1]
            return
        }
        let (block, offset) = position(of: entry)
        blocks[block].insert(entry, at: offset)
        sizes[block] += 1
        if sizes[block] > 2 * Self.blockSize {
            let upper = Array(blocks[block][Self.blockSize...])
            blocks[block].removeSubrange(Self.blockSize...)
            blocks.insert(upper, at: block + 1)
            sizes[block] = Self.blockSize
            sizes.insert(upper.count, at: block + 1)
        }
    }

    private mutating func remove(_ entry: Entry) {
        let (block, offset) = position(of: entry)
        guard block < blocks.count, offset < blocks[block].count, blocks[block][offset] == entry else {
            preconditionFailure("RankedBoard: a user's best is not where its key says")
        }
        blocks[block].remove(at: offset)
        sizes[block] -= 1
        if sizes[block] == 0 {
            blocks.remove(at: block)
            sizes.remove(at: block)
        }
    }
}
