import Codec

/// One response header block (headers or trailers) as nghttp2 delivers its fields.
///
/// Parsed from the bytes nghttp2 hands over: the fields every response carries (`:status`,
/// `grpc-status`, `content-type`, the transport's `grpc-*` fields) cost no `String`
/// allocation; only custom metadata, messages and unusual values become strings.
struct ResponseHead {
    var httpStatus: Int?
    var contentType: String?
    var isGRPCContentType = false
    var grpcStatus: StatusCode?
    var grpcStatusMalformed: String?
    var grpcMessage: String?
    var encoding: String?
    var metadata = Metadata()
    var invalidMetadata = false


    mutating func add(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        // Names are lower-case (nghttp2 rejects others); compare lengths first.
        switch name.count {
        case 7 where Self.equals(name, ":status"):
            httpStatus = Self.smallDecimal(value) ?? Int(String(decoding: value, as: UTF8.self))
            return
        case 11 where Self.equals(name, "grpc-status"):
            if let code = Self.smallDecimal(value) {
                grpcStatus = StatusCode(rawValue: code)
                return
            }
            let text = String(decoding: value, as: UTF8.self)
            grpcStatus = StatusCode(headerValue: text)
            if grpcStatus == nil { grpcStatusMalformed = text }
            return
        case 12 where Self.equals(name, "content-type"):
            isGRPCContentType = Self.isGRPC(value)
            if !isGRPCContentType { contentType = String(decoding: value, as: UTF8.self) }
            return
        case 12 where Self.equals(name, "grpc-message"):
            grpcMessage = GRPCMessageEncoding.decode(String(decoding: value, as: UTF8.self))
            return
        case 13 where Self.equals(name, "grpc-encoding"):
            encoding = String(decoding: value, as: UTF8.self)
            return
        default:
            break
        }
        // Pseudo-headers and `grpc-*` fields are never custom metadata (as `Metadata.isReserved`
        // says); skipping them here spares a string per field, e.g. `grpc-accept-encoding`.
        if name.first == UInt8(ascii: ":") || Self.hasPrefix(name, "grpc-") { return }
        let nameString = String(decoding: name, as: UTF8.self)
        guard !Metadata.isReserved(nameString) else { return }
        if !metadata.addWireHeader(name: nameString, value: String(decoding: value, as: UTF8.self)) {
            invalidMetadata = true
        }
    }

    /// A value of one to four ASCII digits (`200`, `0`, `14`), nil for anything else; other
    /// forms go through the general parser.
    private static func smallDecimal(_ value: UnsafeBufferPointer<UInt8>) -> Int? {
        guard (1...4).contains(value.count) else { return nil }
        var result = 0
        for byte in value {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            result = result * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return result
    }

    /// `application/grpc`, `application/grpc+proto`, `application/grpc;charset=...`.
    private static func isGRPC(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        let grpc: StaticString = "application/grpc"
        guard hasPrefix(value, grpc) else { return false }
        guard value.count > grpc.utf8CodeUnitCount else { return true }
        let next = value[grpc.utf8CodeUnitCount]
        return next == UInt8(ascii: "+") || next == UInt8(ascii: ";")
    }

    /// Byte comparisons with literals, without going through `String` (this runs for every
    /// header field of every response).
    private static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        let expected = literal.utf8Start
        for index in 0..<count where bytes[index] != expected[index] { return false }
        return true
    }

    private static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && hasPrefix(bytes, literal)
    }

    /// The call status this block carries as trailers (or Trailers-Only headers).
    var callStatus: CallStatus {
        guard let grpcStatus else {
            if let grpcStatusMalformed {
                return CallStatus(code: .unknown, message: "malformed grpc-status \"\(grpcStatusMalformed)\"", trailers: metadata)
            }
            return CallStatus(code: .unknown, message: "server sent trailers without grpc-status", trailers: metadata)
        }
        return CallStatus(code: grpcStatus, message: grpcMessage ?? "", trailers: metadata)
    }
}
