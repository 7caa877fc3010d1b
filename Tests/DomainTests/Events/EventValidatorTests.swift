import Storage
import TestSupport
import Codec
@testable import Domain
import Testing

@Suite struct EventValidatorTests {
    static let now: Int64 = 1_790_000_000_000
    let validator = EventValidator()

    static func event(_ change: (inout Tally_V1_Event) -> Void = { _ in }) -> Tally_V1_Event {
        var event = Tally_V1_Event()
        event.id = "e-1"
        event.type = "game_ended"
        event.userId = "u-1"
        event.clientTimeMs = now - 1000
        event.score = 420
        change(&event)
        return event
    }

    @Test func aValidEventPasses() {
        #expect(validator.problem(in: Self.event(), at: 0, nowMs: Self.now) == nil)
        #expect(validator.problem(in: Self.event { $0.type = "custom.level_skipped" }, at: 0, nowMs: Self.now) == nil)
    }

    @Test(arguments: [
        (event { e in e.id = "" }, "events[7].id: must not be empty"),
        (event { e in e.id = String(repeating: "x", count: 65) }, "events[7].id: longer than 64 bytes"),
        (event { e in e.userId = "" }, "events[7].user_id: must not be empty"),
        (event { e in e.userId = "a\u{0}b" }, "events[7].user_id: must not contain control characters"),
        (event { e in e.type = "" }, "events[7].type: must not be empty"),
        (event { e in e.type = "custom." }, "events[7].type: custom type needs a name after \"custom.\""),
        (event { e in e.clientTimeMs = -1 }, "events[7].client_time_ms: must not be negative"),
        (event { e in e.durationMs = -5 }, "events[7].duration_ms: must not be negative"),
        (event { e in e.score = Int64.max }, "events[7].score: must be within ±9007199254740991"),
        // abs(Int64.min) traps: this score crashed the server (turned up writing ValidatorFuzz).
        (event { e in e.score = Int64.min }, "events[7].score: must be within ±9007199254740991"),
        (event { e in e.score = -EventRules.maxScore - 1 }, "events[7].score: must be within ±9007199254740991"),
        (event { e in e.attributes = ["": "x"] }, "events[7].attributes: keys must not be empty"),
        (event { e in e.attributes = ["a\u{0}": "x"] }, "events[7].attributes: keys must not contain U+0000"),
        (event { e in e.attributes = ["k": "x\u{0}"] }, "events[7].attributes[k]: value must not contain U+0000"),
    ] as [(Tally_V1_Event, String)])
    func invalidFieldsAreNamed(event: Tally_V1_Event, expected: String) {
        #expect(validator.problem(in: event, at: 7, nowMs: Self.now) == expected)
    }

    @Test func unknownTypesPointAtTheCustomPrefix() throws {
        let reason = try #require(validator.problem(in: Self.event { $0.type = "gameEnded" }, at: 0, nowMs: Self.now))
        #expect(reason.contains("unknown type \"gameEnded\"") && reason.contains("custom."))
    }

    @Test func clientClocksFarAheadAreRejected() {
        let ahead = Self.event { $0.clientTimeMs = Self.now + 25 * 3_600_000 }
        #expect(validator.problem(in: ahead, at: 0, nowMs: Self.now)?.hasPrefix("events[0].client_time_ms") == true)
    }

    @Test func tooManyAttributes() {
        let many = Self.event { e in for i in 0..<33 { e.attributes["k\(i)"] = "v" } }
        #expect(validator.problem(in: many, at: 0, nowMs: Self.now) == "events[0].attributes: 33 entries, at most 32 allowed")
    }

    @Test func batchesOverTheLimitAreRefusedWhole() {
        #expect(throws: RPCError(.invalidArgument, "events: 101 events in one batch, at most 100 allowed (EVENT_BATCH_MAX)")) {
            try validator.checkBatchSize(101)
        }
        #expect(throws: RPCError(.invalidArgument, "events: at least one event is required")) {
            try validator.checkBatchSize(0)
        }
        #expect(throws: Never.self) { try validator.checkBatchSize(100) }
    }

    @Test("the control-character check on UTF-8 bytes agrees with Unicode's Cc category")
    func controlCharactersMatchUnicode() {
        // Every scalar with one- and two-byte encodings (where Cc lives and where a C2-led pair
        // could be mistaken), a span of three-byte ones, and some four-byte ones.
        let values = Array(0..<0x3000) + [0xFEFF, 0xFFFD, 0x1_0000, 0x1_F600, 0x10_FFFF]
        for value in values {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = "a" + String(Character(scalar)) + "b"
            #expect(
                EventValidator.containsControlCharacter(text) == (scalar.properties.generalCategory == .control),
                "U+\(String(value, radix: 16, uppercase: true))")
        }
    }
}
