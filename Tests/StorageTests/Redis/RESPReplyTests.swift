import TestSupport
import NIOCore
import Testing

@testable import Storage

/// Replies read in place from hiredis' parsed tree (no Redis needed: bytes are fed to the reader).
@Suite("RESP replies in place")
struct RESPReplyTests {
    @Test("decimal digits parse without a String", arguments: [
        ("0", 0 as Int64?), ("42", 42), ("-7", -7), ("9223372036854775807", .max), ("-9223372036854775808", .min),
        ("9223372036854775808", nil), ("", nil), ("-", nil), ("1.5", nil), ("1e+16", nil), (" 1", nil), ("+1", nil),
    ])
    func decimals(text: String, expected: Int64?) {
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBytes { RESPReply.decimal($0) } == expected)
    }

    @Test("every type reads in place and converts to the same RESPValue as before")
    func types() throws {
        #expect(try TestRedis.withReply(":-12\r\n") { $0.int } == -12)
        #expect(try TestRedis.withReply("$3\r\n123\r\n") { $0.int } == 123)
        #expect(try TestRedis.withReply("$3\r\nabc\r\n") { $0.int } == nil)
        #expect(try TestRedis.withReply("+OK\r\n") { $0.value } == .simpleString("OK"))
        #expect(try TestRedis.withReply("-ERR nope\r\n") { $0.errorMessage } == "ERR nope")
        #expect(try TestRedis.withReply("$-1\r\n") { $0.isNull })
        #expect(try TestRedis.withReply("$0\r\n\r\n") { $0.withBytes { $0.count } } == 0)
        let nested = "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n*0\r\n"
        #expect(try TestRedis.withReply(nested) { $0.value } == .array([.integer(1), .array([.bulkString([97]), .null]), .array([])]))
        try TestRedis.withReply(nested) { reply in
            #expect(reply.count == 3)
            #expect(reply.element(1)?.count == 2)
            #expect(reply.element(2)?.isArray == true)
            #expect(reply.element(2)?.count == 0)
            #expect(reply.element(3) == nil)
            #expect(reply.element(0)?.element(0) == nil, "an integer has no elements")
        }
    }
}
