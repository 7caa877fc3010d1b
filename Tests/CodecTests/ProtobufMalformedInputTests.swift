import Codec
import TestSupport
import Testing

/// Hostile bytes must throw `ProtobufError`, never trap: a request that does not parse is
/// answered with INTERNAL, and the server keeps running.
@Suite struct ProtobufMalformedInputTests {
    typealias AllTypes = Tally_Testing_V1_AllTypes

    static let malformed: [(String, [UInt8])] = [
        ("truncated varint", [0x18, 0xFF, 0xFF]),
        ("varint longer than ten bytes", [0x18] + Array(repeating: 0xFF, count: 11) + [0x01]),
        ("length beyond the end", [0x72, 0x05, 0x61]),
        ("huge length", [0x72, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ("truncated fixed64", [0x51, 0x01, 0x02, 0x03]),
        ("truncated fixed32", [0x4D, 0x01]),
        ("field number zero", [0x00, 0x01]),
        ("wire type 7", [0x0F]),
        ("end group without start", [0x0C]),
        ("varint where a string belongs", [0x70, 0x01]),
        ("fixed64 where a message belongs", [0x91, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("nested message truncated", [0x92, 0x01, 0x04, 0x08]),
        ("nested message malformed", [0x92, 0x01, 0x02, 0x08, 0xFF]),
        ("packed varints truncated", [0x8A, 0x02, 0x02, 0xFF, 0xFF]),
        ("packed fixed32 with odd length", [0xC2, 0x02, 0x03, 0, 0, 0]),
        ("map entry truncated", [0x8A, 0x05, 0x05, 0x0A, 0x01]),
        ("tag varint truncated", [0x80]),
    ]

    @Test(arguments: malformed)
    func malformedBytesThrow(_ name: String, _ bytes: [UInt8]) {
        #expect(throws: ProtobufError.self, "\(name)") { try AllTypes(protobuf: bytes) }
    }

    @Test func errorNamesTheMessage() {
        do {
            _ = try Bench_V1_EchoRequest(protobuf: [0x0A, 0x10, 0x01])
            Issue.record("truncated bytes field decoded")
        } catch {
            #expect(error.messageName == "bench.v1.EchoRequest")
        }
    }

    @Test(arguments: [[0x72, 0x02, 0xC3, 0x28], [0x72, 0x01, 0xFF], [0x72, 0x03, 0xED, 0xA0, 0x80], [0x72, 0x02, 0x61, 0x00]] as [[UInt8]])
    func invalidUTF8OrNULInStringsDoesNotTrap(_ bytes: [UInt8]) {
        // protobuf-c may reject the string or keep it; Swift repairs what it keeps.
        if let message = try? AllTypes(protobuf: bytes) {
            #expect(message.fString.unicodeScalars.count <= bytes.count)
        }
    }

    @Test func unknownFieldsAreSkipped() throws {
        // Field 1000 varint, field 1001 length-delimited, then f_int32 = 5.
        let bytes: [UInt8] = [0xC0, 0x3E, 0x01, 0xCA, 0x3E, 0x02, 0x61, 0x62, 0x18, 0x05]
        #expect(try AllTypes(protobuf: bytes).fInt32 == 5)
    }

    /// Random byte strings, and valid encodings with random corruption; any outcome but a
    /// trap is fine, and whatever decodes must re-encode and decode to the same value.
    @Test(arguments: 0..<4)
    func randomGarbage(_ seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        var valid = AllTypes()
        valid.fString = "seed"
        valid.rInt64 = [1, -1, 300]
        valid.mStringString = ["a": "b"]
        valid.choice = .oNested(AllTypes.Nested())
        valid.child = valid
        let template = valid.encodedBytes()
        for iteration in 0..<1_000 {
            var bytes: [UInt8]
            if iteration % 2 == 0 {
                bytes = (0..<Int(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = template
                for _ in 0..<(1 + random.next() % 4) {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
                bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count + 1))))
            }
            for decode in Self.decoders {
                if let message = try? decode(bytes) {
                    #expect(try message.reencoded())
                }
            }
        }
    }

    static let decoders: [@Sendable ([UInt8]) throws -> any ProtobufMessage] = [
        { try AllTypes(protobuf: $0) },
        { try Tally_V1_TrackRequest(protobuf: $0) },
        { try Tally_V1_PresenceClientMessage(protobuf: $0) },
        { try Grpc_Reflection_V1_ServerReflectionRequest(protobuf: $0) },
        { try Bench_V1_EchoRequest(protobuf: $0) },
    ]
}

extension ProtobufMessage {
    /// Whether the message survives encode and decode unchanged (NaN aside: NaN != NaN).
    func reencoded() throws -> Bool {
        try Self(protobuf: encodedBytes()).encodedBytes() == encodedBytes()
    }
}
