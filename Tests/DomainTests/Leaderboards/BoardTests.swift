import Storage
import TestSupport
import Codec
@testable import Domain
import Testing

@Suite struct BoardTests {
    @Test(arguments: [("global", BoardID.global), ("tournament:spring-cup", .tournament("spring-cup")), ("quiz:q1", .quiz("q1")),
                      ("quiz:café", .quiz("café"))])
    func boardIDsParse(text: String, board: BoardID) throws {
        #expect(try BoardID(parsing: text) == board)
        #expect(board.description == text)
    }

    @Test(arguments: ["", "Global", "tournament:", "league:x", "quiz:a b", "quiz:{x}", "quiz:x}", "quiz:a\tb", "quiz:a\u{3000}b",
                      "quiz:é{", "tournament:" + String(repeating: "x", count: 65)])
    func badBoardIDsAreInvalidArguments(text: String) {
        #expect {
            try BoardID(parsing: text)
        } throws: { error in
            (error as? RPCError)?.code == .invalidArgument && (error as? RPCError)?.message.hasPrefix("board_id: ") == true
        }
    }

    @Test("boards whose ids are equal only as Swift strings (NFC and NFD) are two boards, as their Redis keys are")
    func boardsByBytes() {
        let composed = BoardID.tournament("caf\u{E9}")
        let decomposed = BoardID.tournament("cafe\u{301}")
        #expect(composed != decomposed)
        #expect(Set([composed, decomposed, .quiz("caf\u{E9}"), .global, .global]).count == 4)
        #expect(BoardKeys(composed).tag != BoardKeys(decomposed).tag)
    }

    @Test("keys share the board's hash tag, as the scripts and other instances expect")
    func keys() {
        let keys = BoardKeys(.tournament("t-1"), namespace: "lb")
        #expect(keys.z == RedisArgument("{lb:tournament:t-1}:z"))
        #expect(keys.m == RedisArgument("{lb:tournament:t-1}:m"))
        #expect(keys.ready == RedisArgument("{lb:tournament:t-1}:ready"))
        #expect(keys.building == RedisArgument("{lb:tournament:t-1}:building"))
        #expect(keys.nextZ == RedisArgument("{lb:tournament:t-1}:z:next"))
        #expect(keys.nextM == RedisArgument("{lb:tournament:t-1}:m:next"))
        #expect(keys.submission("s-9") == RedisArgument("{lb:tournament:t-1}:submission:s-9"))
        #expect(BoardKeys(.global, namespace: "x").z == RedisArgument("{x:global}:z"))
    }

    @Test func membersRoundTripAndEarlierTimesSortHigher() throws {
        let early = BoardMember(userID: "zoë", achievedAtMs: 1_700_000_000_000)
        let late = BoardMember(userID: "adam", achievedAtMs: 1_700_000_000_001)
        #expect(BoardMember(encoded: early.encoded) == early)
        #expect(BoardMember(encoded: BoardMember(userID: "u", achievedAtMs: 0).encoded)?.achievedAtMs == 0)
        // Redis compares members bytewise and ZREVRANGE lists the larger first.
        #expect(Array(early.encoded.utf8).lexicographicallyPrecedes(Array(late.encoded.utf8)) == false)
        #expect(BoardMember(encoded: "123") == nil)
        #expect(BoardMember(encoded: "12345678901x3user") == nil, "the time prefix is digits only")
        #expect(BoardMember(encoded: "9999999999999") == nil, "no user id")
    }
}
