import Codec
import NIOCore
import Testing

/// Encode then decode every field shape the generator emits, through protobuf-c.
@Suite struct ProtobufRoundTripTests {
    typealias AllTypes = Tally_Testing_V1_AllTypes

    static func roundTrip<M: ProtobufMessage>(_ message: M) throws -> M {
        let bytes = message.encodedBytes()
        #expect(bytes.count == message.encodedSize)
        return try M(protobuf: bytes)
    }

    static let scalarLimits: [AllTypes] = {
        var low = AllTypes()
        low.fDouble = -.greatestFiniteMagnitude
        low.fFloat = -.greatestFiniteMagnitude
        low.fInt32 = .min
        low.fInt64 = .min
        low.fUint32 = 1
        low.fUint64 = 1
        low.fSint32 = .min
        low.fSint64 = .min
        low.fFixed32 = 1
        low.fFixed64 = 1
        low.fSfixed32 = .min
        low.fSfixed64 = .min
        low.fBool = true
        var high = AllTypes()
        high.fDouble = .greatestFiniteMagnitude
        high.fFloat = .leastNonzeroMagnitude
        high.fInt32 = .max
        high.fInt64 = .max
        high.fUint32 = .max
        high.fUint64 = .max
        high.fSint32 = .max
        high.fSint64 = .max
        high.fFixed32 = .max
        high.fFixed64 = .max
        high.fSfixed32 = .max
        high.fSfixed64 = .max
        var special = AllTypes()
        special.fDouble = .infinity
        special.fFloat = -.infinity
        special.fInt32 = -1
        special.fInt64 = -1
        return [AllTypes(), low, high, special]
    }()

    @Test(arguments: scalarLimits)
    func scalarsAtTheirLimits(_ message: AllTypes) throws {
        #expect(try Self.roundTrip(message) == message)
    }

    @Test(arguments: ["", "a", "héllo wörld", "日本語テキスト", "emoji 🎮🏆👩‍👩‍👧", "\u{7F}\u{80}\u{FFFF}\u{10FFFF}", String(repeating: "x", count: 100_000)])
    func unicodeStrings(_ text: String) throws {
        var message = AllTypes()
        message.fString = text
        message.rString = [text, "", text]
        message.mStringString = [text: text, "k": ""]
        message.choice = .oString(text)
        #expect(try Self.roundTrip(message) == message)
    }

    @Test func emptyMessagesEncodeToNothing() throws {
        #expect(Tally_Testing_V1_Empty().encodedBytes() == [])
        #expect(AllTypes().encodedBytes() == [])
        #expect(try Tally_Testing_V1_Empty(protobuf: [UInt8]()) == Tally_Testing_V1_Empty())
        #expect(try AllTypes(protobuf: [UInt8]()) == AllTypes())
        #expect(try Tally_V1_StatsRequest(protobuf: [UInt8]()) == Tally_V1_StatsRequest())
    }

    @Test func nestedAndRecursiveMessages() throws {
        var inner = AllTypes.Nested()
        inner.value = 42
        inner.protocol = "keyword field"
        var grandchild = AllTypes()
        grandchild.fString = "grandchild"
        grandchild.fNested = inner
        var child = AllTypes()
        child.child = grandchild
        child.rNested = [inner, AllTypes.Nested(), inner]
        var message = AllTypes()
        message.child = child
        message.fNested = AllTypes.Nested()  // present but empty: stays present
        let decoded = try Self.roundTrip(message)
        #expect(decoded == message)
        #expect(decoded.fNested != nil)
        #expect(decoded.child?.child?.fNested?.protocol == "keyword field")
    }

    @Test func repeatedFields() throws {
        var message = AllTypes()
        message.rDouble = [0, -1.5, .pi, .infinity]
        message.rFloat = [0, 1.25, -.greatestFiniteMagnitude]
        message.rInt32 = [0, -1, .min, .max]
        message.rInt64 = [.min, 0, .max]
        message.rUint32 = [0, .max]
        message.rUint64 = [0, .max]
        message.rSint32 = [.min, -1, 0, 1, .max]
        message.rSint64 = [.min, -1, 0, 1, .max]
        message.rFixed32 = [0, .max]
        message.rFixed64 = [0, .max]
        message.rSfixed32 = [.min, .max]
        message.rSfixed64 = [.min, .max]
        message.rBool = [true, false, true]
        message.rString = ["a", "", "ü"]
        message.rBytes = [[], [0], [0xFF, 0x00, 0x80]]
        message.rColor = [.red, .negative, .unrecognized(99), .unspecified]
        message.rUnpacked = [1, -1, .max]
        message.rInt32 = Array(repeating: 7, count: 10_000)
        #expect(try Self.roundTrip(message) == message)
    }

    @Test func maps() throws {
        var nested = AllTypes.Nested()
        nested.value = -5
        var message = AllTypes()
        message.mStringString = ["": "empty key", "b": "2", "a": "1", "ключ": "значение"]
        message.mInt32Nested = [.min: nested, 0: AllTypes.Nested(), .max: nested]
        message.mSint64Color = [.min: .negative, 0: .unspecified, .max: .unrecognized(12345)]
        message.mBoolBytes = [true: [1, 2, 3], false: []]
        message.mFixed64Double = [0: 0, .max: -0.5]
        #expect(try Self.roundTrip(message) == message)
    }

    @Test func mapEncodingIsDeterministic() {
        var a = AllTypes()
        var b = AllTypes()
        for key in (0..<200).shuffled() { a.mStringString["key\(key)"] = "\(key)" }
        for key in (0..<200).shuffled() { b.mStringString["key\(key)"] = "\(key)" }
        #expect(a.encodedBytes() == b.encodedBytes())
    }

    static let oneofChoices: [AllTypes.OneOf_Choice?] = [
        nil, .oString(""), .oString("set"), .oBytes([]), .oBytes([0, 1, 2]), .oInt64(0), .oInt64(.min),
        .oColor(.unspecified), .oColor(.negative), .oColor(.unrecognized(1_000_000)),
        .oNested(AllTypes.Nested()), .oBool(false), .oBool(true),
    ]

    @Test(arguments: oneofChoices)
    func oneofMembersKeepTheirCaseEvenAtDefaultValues(_ choice: AllTypes.OneOf_Choice?) throws {
        var message = AllTypes()
        message.choice = choice
        #expect(try Self.roundTrip(message).choice == choice)
    }

    @Test(arguments: [Int32.min, -3, -1, 0, 1, 2, 3, 1 << 20, .max])
    func enumsAreOpen(_ raw: Int32) throws {
        var message = AllTypes()
        message.fColor = Tally_Testing_V1_Color(rawValue: raw)
        message.fMood = AllTypes.Mood(rawValue: raw)
        let decoded = try Self.roundTrip(message)
        #expect(decoded.fColor.rawValue == raw)
        #expect(decoded.fMood.rawValue == raw)
        #expect(decoded == message)
    }

    @Test(arguments: [0, 1, 32, 65_536, 4 << 20])
    func largeBytes(_ count: Int) throws {
        var generator = SystemRandomNumberGenerator()
        var request = Bench_V1_EchoRequest()
        request.payload = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        #expect(try Self.roundTrip(request) == request)
        var message = AllTypes()
        message.fBytes = request.payload
        message.rBytes = [request.payload, [1]]
        #expect(try Self.roundTrip(message) == message)
    }

    @Test func encodeAppendsAfterExistingBytes() throws {
        var response = Bench_V1_EchoResponse()
        response.payload = Array(repeating: 0xAB, count: 32)
        var buffer = ByteBuffer(bytes: [1, 2, 3])
        response.encode(into: &buffer)
        #expect(buffer.readBytes(length: 3) == [1, 2, 3])
        #expect(buffer.readableBytes == response.encodedSize)
        #expect(try Bench_V1_EchoResponse(protobuf: buffer) == response)
    }

    /// Product messages with every kind of field the API uses.
    @Test func apiMessages() throws {
        var event = Tally_V1_Event()
        event.id = "0d6c5a8e-6c0b-4a8e-9d0e-3c1b2a4f5e6d"
        event.type = "game_ended"
        event.userId = "user-1"
        event.clientTimeMs = 1_700_000_000_000
        event.score = .max
        event.gameMode = "blitz"
        event.tournamentId = "t1"
        event.durationMs = 61_000
        event.level = 12
        event.attributes = ["platform": "ios", "locale": "de-DE"]
        var track = Tally_V1_TrackRequest()
        track.events = [event, Tally_V1_Event(), event]
        #expect(try Self.roundTrip(track) == track)

        var hello = Tally_V1_Hello()
        hello.userId = "u"
        var presence = Tally_V1_PresenceClientMessage()
        presence.kind = .hello(hello)
        #expect(try Self.roundTrip(presence) == presence)

        var health = Grpc_Health_V1_HealthCheckResponse()
        health.status = .serving
        #expect(try Self.roundTrip(health) == health)

        var list = Grpc_Reflection_V1_ListServiceResponse()
        list.service = ProtoDescriptors.services.map {
            var service = Grpc_Reflection_V1_ServiceResponse()
            service.name = $0.name
            return service
        }
        var reflection = Grpc_Reflection_V1_ServerReflectionResponse()
        reflection.validHost = "localhost"
        reflection.messageResponse = .listServicesResponse(list)
        #expect(try Self.roundTrip(reflection) == reflection)
    }
}
