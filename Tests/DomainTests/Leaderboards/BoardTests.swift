import Codec
@testable import Domain
import Testing

@Suite struct BoardTests {
    @Test(arguments: [("global", BoardID.global), ("tournament:spring-cup", .tournament("spring-cup")), ("quiz:q1", .quiz("q1"))])
    func boardIDsParse(text: String, board: BoardID) throws {
        #expect(try BoardID(parsing: text) == board)
        #expect(board.description == text)
    }

    @Test(arguments: ["", "Global", "tournament:", "league:x", "quiz:a b", "quiz:{x}", "tournament:" + String(repeating: "x", count: 65)])
    func badBoardIDsAreInvalidArguments(text: String) {
        #expect {
            try BoardID(parsing: text)
        } throws: { error in
            (error as? RPCError)?.code == .invalidArgument && (error as? RPCError)?.message.hasPrefix("board_id: ") == true
        }
    }

    @Test func membersRoundTripAndEarlierTimesSortHigher() throws {
        let early = BoardMember(userID: "zoë", achievedAtMs: 1_700_000_000_000)
        let late = BoardMember(userID: "adam", achievedAtMs: 1_700_000_000_001)
        #expect(BoardMember(encoded: early.encoded) == early)
        #expect(BoardMember(encoded: BoardMember(userID: "u", achievedAtMs: 0).encoded)?.achievedAtMs == 0)
        // Redis compares members bytewise and ZREVRANGE lists the larger first.
        #expect(Array(early.encoded.utf8).lexicographicallyPrecedes(Array(late.encoded.utf8)) == false)
        #expect(BoardMember(encoded: "123") == nil)
    }
}
