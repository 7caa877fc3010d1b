import Codec
import Testing

@Suite("gRPC header values")
struct WireHeaderTests {
    @Test(
        "grpc-timeout parses every unit",
        arguments: [
            ("1H", Duration.seconds(3600)), ("2M", .seconds(120)), ("3S", .seconds(3)), ("150m", .milliseconds(150)),
            ("250u", .microseconds(250)), ("99999999n", .nanoseconds(99_999_999)), ("0S", .zero),
        ])
    func timeoutUnits(text: String, expected: Duration) {
        #expect(GRPCTimeout.parse(text) == expected)
    }

    @Test("malformed grpc-timeout is rejected", arguments: ["", "S", "10", "1x", "-1S", "123456789S", "1.5S", " 1S"])
    func timeoutMalformed(text: String) {
        #expect(GRPCTimeout.parse(text) == nil)
    }

    @Test("grpc-timeout formatting round-trips without shortening", arguments: [
        Duration.nanoseconds(1), .microseconds(1500), .milliseconds(200), .seconds(30), .seconds(100_000_000), .seconds(400_000_000),
    ])
    func timeoutFormat(duration: Duration) throws {
        let text = GRPCTimeout.format(duration)
        #expect(text.count <= 9)
        let parsed = try #require(GRPCTimeout.parse(text))
        #expect(parsed >= duration)
    }

    @Test("grpc-message percent-encoding round-trips", arguments: [
        "plain", "100% done", "héllo 日本 🎮", "line\nbreak", "", "%%%",
    ])
    func messageEncoding(text: String) {
        let encoded = GRPCMessageEncoding.encode(text)
        #expect(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E })
        #expect(GRPCMessageEncoding.decode(encoded) == text)
    }

    @Test("malformed percent escapes are kept, not fatal", arguments: ["%", "%4", "%zz", "a%2"])
    func messageMalformed(text: String) {
        #expect(GRPCMessageEncoding.decode(text) == text)
    }

    @Test("binary metadata decodes padded and unpadded base64")
    func binaryMetadata() {
        var metadata = Metadata()
        let added = [
            metadata.addWireHeader(name: "x-bin", value: "AAEC"),
            metadata.addWireHeader(name: "y-bin", value: "AAE="),
            metadata.addWireHeader(name: "z-bin", value: "AAE"),
            metadata.addWireHeader(name: "bad-bin", value: "!!"),
        ]
        #expect(added == [true, true, true, false])
        #expect(metadata.binary("x-bin") == [0, 1, 2])
        #expect(metadata.binary("y-bin") == [0, 1])
        #expect(metadata.binary("z-bin") == [0, 1])
    }

    @Test("binary metadata round-trips through the wire form", arguments: [[UInt8](), [0], [0, 1], [0, 1, 2], Array(0...255)])
    func binaryRoundTrip(bytes: [UInt8]) {
        var metadata = Metadata()
        metadata.add("k-bin", binary: bytes)
        var received = Metadata()
        for (name, value) in metadata.wireHeaders {
            let added = received.addWireHeader(name: name, value: value)
            #expect(added)
        }
        #expect(received.binary("k-bin") == bytes)
    }

    @Test("status codes keep unknown values")
    func statusCodes() {
        #expect(StatusCode(headerValue: "14") == .unavailable)
        #expect(StatusCode(headerValue: "99")?.name == "CODE_99")
        #expect(StatusCode(headerValue: "x") == nil)
        #expect(StatusCode.resourceExhausted.name == "RESOURCE_EXHAUSTED")
    }
}
