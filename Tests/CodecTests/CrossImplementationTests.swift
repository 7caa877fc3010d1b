import Codec
import Foundation
import NIOCore
import Testing

@Suite("protobuf-c bridged messages, and Python protobuf cross-check")
struct CrossImplementationTests {
    static var richEvent: Tally_V1_Event {
        var event = Tally_V1_Event()
        event.id = "e-1"
        event.type = "game_ended"
        event.userId = "ユーザー🎮"
        event.clientTimeMs = Int64.min
        event.score = Int64.max
        event.gameMode = ""
        event.durationMs = -1
        event.level = Int32.max
        event.attributes = ["a": "1", "ключ": "значение", "": ""]
        return event
    }

    static var samples: [any ProtobufMessage] {
        var track = Tally_V1_TrackRequest()
        track.events = [richEvent, Tally_V1_Event(), richEvent]
        var topup = Tally_V1_Topup()
        topup.amount = { var money = Tally_V1_Money(); money.minorUnits = 1250; money.currency = "EUR"; return money }()
        topup.status = .unrecognized(77)
        var presence = Tally_V1_PresenceClientMessage()
        presence.kind = .subscribe({ var s = Tally_V1_Subscribe(); s.userIds = ["a", "b", ""]; return s }())
        var heartbeat = Tally_V1_PresenceClientMessage()
        heartbeat.kind = .heartbeat(Tally_V1_Heartbeat())
        var echo = Bench_V1_EchoRequest()
        echo.payload = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var reflection = Grpc_Reflection_V1_ServerReflectionResponse()
        reflection.messageResponse = .fileDescriptorResponse({
            var files = Grpc_Reflection_V1_FileDescriptorResponse()
            files.fileDescriptorProto = [[], [0, 1, 2], Array(repeating: 9, count: 1000)]
            return files
        }())
        var health = Grpc_Health_V1_HealthCheckResponse()
        health.status = .serviceUnknown
        return [track, topup, presence, heartbeat, echo, reflection, health, Tally_V1_StatsRequest(), richEvent]
    }

    @Test("every sample survives encode and decode", arguments: 0..<9)
    func roundTrip(index: Int) throws {
        try Self.check(Self.samples[index])
    }

    private static func check<M: ProtobufMessage>(_ message: M) throws {
        var buffer = ByteBuffer()
        message.encode(into: &buffer)
        #expect(buffer.readableBytes == message.encodedSize)
        let decoded = try M(protobuf: buffer)
        #expect(decoded == message)
    }

    @Test("an empty message encodes to nothing and decodes from nothing")
    func empty() throws {
        #expect(Tally_V1_TrackRequest().encodedBytes() == [])
        #expect(try Tally_V1_TrackRequest(protobuf: [UInt8]()) == Tally_V1_TrackRequest())
    }

    @Test("malformed bytes throw, never trap", arguments: [
        [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],  // length far past the end
        [0x0a, 0x05, 0x41],  // truncated string
        [0x08],  // truncated varint
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],  // overlong tag
        [0x0b],  // start group wire type
    ] as [[UInt8]])
    func malformed(bytes: [UInt8]) {
        #expect(throws: ProtobufError.self) { _ = try Tally_V1_Event(protobuf: bytes) }
    }

    @Test("invalid UTF-8 in a string field is repaired, never trapped on")
    func invalidUTF8() throws {
        // protobuf-c 1.4 does not validate UTF-8; the bridge turns bad sequences into U+FFFD.
        let event = try Tally_V1_Event(protobuf: [0x0a, 0x03, 0xff, 0xfe, 0xfd] as [UInt8])
        #expect(event.id.unicodeScalars.allSatisfy { $0 == "\u{FFFD}" })
    }

    @Test("random garbage never traps")
    func garbage() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let count = Int.random(in: 0..<64, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? Tally_V1_TrackRequest(protobuf: bytes)
            _ = try? Tally_V1_PresenceClientMessage(protobuf: bytes)
            _ = try? Grpc_Reflection_V1_ServerReflectionRequest(protobuf: bytes)
        }
    }

    /// Fixtures from Python's protobuf (tools/codegen/make_fixtures.py): decode each in Swift
    /// and write Swift's encoding back; Tests/python/test_codec_cross.py parses those bytes
    /// with Python and requires the original message, which checks both directions.
    @Test("messages encoded by Python's protobuf decode in Swift and re-encode for Python")
    func crossImplementation() throws {
        guard let directory = ProcessInfo.processInfo.environment["TALLY_CODEC_FIXTURES"] else {
            // tools/test.sh sets it after generating the fixtures; a bare `swift test` skips this.
            return
        }
        let input = try String(contentsOfFile: directory + "/fixtures.jsonl", encoding: .utf8)
        var output = ""
        var count = 0
        for line in input.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: String]
            let type = object["type"]!
            let bytes = Self.hexBytes(object["hex"]!)
            let reencoded = try Self.reencode(type: type, bytes: bytes)
            output += "{\"type\": \"\(type)\", \"hex\": \"\(reencoded.map { String(format: "%02x", $0) }.joined())\"}\n"
            count += 1
        }
        #expect(count > 0)
        try output.write(toFile: directory + "/swift.jsonl", atomically: true, encoding: .utf8)
    }

    private static func reencode(type: String, bytes: [UInt8]) throws -> [UInt8] {
        switch type {
        case Bench_V1_EchoRequest.protoName: try Bench_V1_EchoRequest(protobuf: bytes).encodedBytes()
        case Tally_V1_TrackRequest.protoName: try Tally_V1_TrackRequest(protobuf: bytes).encodedBytes()
        case Tally_V1_EventAck.protoName: try Tally_V1_EventAck(protobuf: bytes).encodedBytes()
        case Tally_V1_TopupRequest.protoName: try Tally_V1_TopupRequest(protobuf: bytes).encodedBytes()
        case Tally_V1_Topup.protoName: try Tally_V1_Topup(protobuf: bytes).encodedBytes()
        case Tally_V1_PresenceClientMessage.protoName: try Tally_V1_PresenceClientMessage(protobuf: bytes).encodedBytes()
        case Tally_V1_SubmitAnswersRequest.protoName: try Tally_V1_SubmitAnswersRequest(protobuf: bytes).encodedBytes()
        case Tally_V1_WatchUpdate.protoName: try Tally_V1_WatchUpdate(protobuf: bytes).encodedBytes()
        case Grpc_Health_V1_HealthCheckResponse.protoName: try Grpc_Health_V1_HealthCheckResponse(protobuf: bytes).encodedBytes()
        case Grpc_Reflection_V1_ServerReflectionResponse.protoName:
            try Grpc_Reflection_V1_ServerReflectionResponse(protobuf: bytes).encodedBytes()
        default: throw ProtobufError(messageName: type, reason: "no Swift type mapped in the test")
        }
    }

    private static func hexBytes(_ hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            bytes.append(UInt8(Self.nibble(high) << 4 | Self.nibble(low)))
        }
        return bytes
    }

    private static func nibble(_ char: UInt8) -> UInt8 {
        char >= 97 ? char - 87 : char - 48
    }
}
