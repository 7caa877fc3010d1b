import Storage
import TestSupport
import Testing

@testable import Domain

@Suite("Board change announcements")
struct BoardChangeTests {
    @Test("improvements round-trip with their board", arguments: [BoardID.global, .tournament("cup-1"), .quiz("日本")])
    func roundTrip(board: BoardID) {
        let changes = [
            BoardChange(version: 1, userID: "ann", score: 100, achievedAtMs: 1_700_000_000_000),
            BoardChange(version: Int64.max, userID: "ü-\u{1F600}", score: -9_007_199_254_740_992, achievedAtMs: -1),
            BoardChange(version: 3, userID: String(repeating: "x", count: 128), score: 0, achievedAtMs: 0),
        ]
        let decoded = BoardChange.decode(BoardChange.encode(changes, board: board))
        #expect(decoded?.board == board)
        #expect(decoded?.changes == changes)
    }

    @Test("another format or a truncated payload is not read as changes")
    func foreignPayloads() {
        #expect(BoardChange.decode(Array("global".utf8)) == nil, "a Watch announcement")
        #expect(BoardChange.decode([]) == nil)
        let bytes = BoardChange.encode([BoardChange(version: 1, userID: "ann", score: 1, achievedAtMs: 1)], board: .global)
        for length in 1..<bytes.count where length != 9 {  // 9 bytes: the board alone, no changes
            #expect(BoardChange.decode(Array(bytes.prefix(length))) == nil, "\(length) bytes")
        }
    }
}
