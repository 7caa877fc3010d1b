import Codec
import Foundation
import Testing

/// protobuf-c (through the generated Swift types) against Python's official protobuf package,
/// on random messages of every type in proto/.
///
/// Run by the test script in three steps (the Python side needs `protobuf` from
/// Tests/python/requirements.txt, installed in .venv):
///
///     DIR=$(mktemp -d)
///     .venv/bin/python3 Tests/python/codec_fixtures.py generate --out "$DIR"
///     TALLY_CODEC_FIXTURES="$DIR" swift test --filter CodecTests
///     .venv/bin/python3 Tests/python/codec_fixtures.py verify --dir "$DIR"
///
/// Swift decodes Python's bytes (fields in shuffled order) and writes its own encoding to
/// `$DIR/swift/`; the verify step parses those with Python and requires the original message,
/// which checks decoding and encoding field by field. Bytes are not compared with Python's:
/// protobuf's deterministic encoding is not canonical across implementations (protobuf-c
/// leaves zero map keys out of map entries, for one). Without `TALLY_CODEC_FIXTURES` the test
/// is skipped.
@Suite struct ProtobufCrossImplementationTests {
    static let fixtures = ProcessInfo.processInfo.environment["TALLY_CODEC_FIXTURES"]

    @Test(.enabled(if: fixtures != nil, "TALLY_CODEC_FIXTURES unset: run Tests/python/codec_fixtures.py generate first"))
    func pythonEncodingsDecodeAndReencodeStably() throws {
        let directory = URL(fileURLWithPath: try #require(Self.fixtures))
        let data = try Data(contentsOf: directory.appendingPathComponent("fixtures.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require(root["cases"] as? [[String: Any]])
        let output = directory.appendingPathComponent("swift")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)

        var failures = 0
        for entry in cases {
            let name = try #require(entry["name"] as? String)
            let messageName = try #require(entry["message"] as? String)
            let wire = try hexBytes(try #require(entry["wire"] as? String))
            guard let type = ProtoDescriptors.messageTypes[messageName] else {
                Issue.record("\(name): no Swift type for \(messageName)")
                failures += 1
                continue
            }
            do {
                let (encoded, stable) = try Self.reencode(type, wire)
                try Data(encoded).write(to: output.appendingPathComponent("\(name).bin"))
                if !stable {
                    failures += 1
                    Issue.record("\(name): decoding Swift's own encoding gives a different message")
                }
            } catch {
                failures += 1
                Issue.record("\(name): Swift cannot decode Python's encoding: \(error)")
            }
        }
        #expect(failures == 0, "\(failures) of \(cases.count) fixtures failed")
    }

    /// Decodes `bytes`, re-encodes, and checks the re-encoding decodes to an equal message.
    private static func reencode<M: ProtobufMessage>(_: M.Type, _ bytes: [UInt8]) throws -> ([UInt8], Bool) {
        let message = try M(protobuf: bytes)
        let encoded = message.encodedBytes()
        return (encoded, try M(protobuf: encoded) == message)
    }
}

func hexBytes(_ text: String) throws -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count / 2)
    var iterator = text.utf8.makeIterator()
    while let high = iterator.next() {
        guard let low = iterator.next(), let h = nibble(high), let l = nibble(low) else {
            throw FixtureError(description: "bad hex in fixture")
        }
        bytes.append(h << 4 | l)
    }
    return bytes
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

private func nibble(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    default: nil
    }
}
