import LoadKit
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    @Test("parses values, keeps number text and member order")
    func parses() throws {
        let value = try JSONParser.parse(#"{"b": [1, -2.5e3, 9007199254740993], "a": {"s": "x\ty\u00e9\ud83d\ude00"}, "t": true, "n": null}"#)
        #expect(value["b"] == .array([.number("1"), .number("-2.5e3"), .number("9007199254740993")]))
        #expect(value["a"]?["s"] == .string("x\tyé😀"))
        #expect(value["t"] == .bool(true))
        #expect(value["n"] == .null)
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["b", "a", "t", "n"])
    }

    @Test("bare {{...}} tokens stand for values")
    func templateTokens() throws {
        let value = try JSONParser.parse(#"{"score": {{randomInt 1 9}}, "list": [{{seq}}]}"#)
        #expect(value["score"] == .template("randomInt 1 9"))
        #expect(value["list"] == .array([.template("seq")]))
    }

    @Test("errors give line and column", arguments: [
        ("{\"a\": }", "line 1, column 7"), ("{\n  \"a\": 1,\n}", "line 3, column 1"), ("[1 2]", "line 1, column 4"),
        ("\"abc", "unterminated string"), ("{} x", "unexpected text"),
    ])
    func errors(_ text: String, _ expected: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test("serialization round-trips")
    func roundTrip() throws {
        let text = #"{"a":[1,"x\"y\n",true,null,{}],"b":{"c":-0.5}}"#
        #expect(try JSONParser.parse(text).serialized() == text)
    }
}
