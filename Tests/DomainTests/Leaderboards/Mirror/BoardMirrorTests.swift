import Storage
import Testing

@testable import Domain

/// One mirror applying announced changes, without Redis: on a latest-score board the newest
/// version of each user wins whatever the order of arrival; a best-score board max-merges.
@Suite("Board mirror")
struct BoardMirrorTests {
    /// A mirror loaded at version 10 with ann (5 points) and bob (3).
    static func mirror(_ board: BoardID) -> BoardMirror {
        let snapshot = RankedBoard([RankedBoard.Entry(userID: "ann", score: 5, achievedAtMs: 100),
                                    RankedBoard.Entry(userID: "bob", score: 3, achievedAtMs: 100)])
        return BoardMirror(boardID: board, board: snapshot, incarnation: [1], version: 10, at: .now)
    }

    static func change(_ version: Int64, _ user: String, _ score: Int64) -> BoardChange {
        BoardChange(version: version, userID: user, score: score, achievedAtMs: 200)
    }

    static func entry(_ mirror: BoardMirror, _ user: String) -> LeaderboardEntry? {
        guard case .answer(let window) = mirror.rank(user: user, neighbours: 0, now: .now, freshness: .seconds(60)) else { return nil }
        return window?.entry
    }

    @Test("on a latest-score board an older change arriving after a newer one is ignored")
    func newerVersionWins() {
        let mirror = Self.mirror(.quiz("q"))
        mirror.apply([Self.change(12, "ann", 2)])
        #expect(Self.entry(mirror, "ann") == LeaderboardEntry(rank: 2, userID: "ann", score: 2, achievedAtMs: 200), "replaced, though lower")
        mirror.apply([Self.change(11, "ann", 7)])
        #expect(Self.entry(mirror, "ann")?.score == 2)
        mirror.apply([Self.change(14, "bob", 1), Self.change(13, "bob", 9)])
        #expect(Self.entry(mirror, "bob")?.score == 1, "within one batch too")
        #expect(mirror.check(incarnation: [1], version: 14, now: .now, gapGrace: .seconds(1)) == .fresh)
    }

    @Test("on a latest-score board the snapshot counts as set at its version: an older change arriving late is ignored")
    func snapshotIsAtItsVersion() {
        let mirror = Self.mirror(.quiz("q"))
        mirror.apply([Self.change(9, "ann", 1)])
        #expect(Self.entry(mirror, "ann")?.score == 5)
        mirror.apply([Self.change(11, "ann", 1)])
        #expect(Self.entry(mirror, "ann")?.score == 1)
    }

    @Test("a best-score board keeps each user's best, whatever the versions")
    func bestScoreBoardMerges() {
        let mirror = Self.mirror(.tournament("t"))
        mirror.apply([Self.change(11, "ann", 1)])
        #expect(Self.entry(mirror, "ann")?.score == 5)
        mirror.apply([Self.change(12, "bob", 8), Self.change(9, "ann", 6)])
        #expect(Self.entry(mirror, "bob")?.rank == 1)
        #expect(Self.entry(mirror, "ann")?.score == 6)
    }
}
