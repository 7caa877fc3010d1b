import Codec

/// The request headers of one stream, as they arrive from nghttp2.
struct RequestHead {
    var method = ""
    var path = ""
    var contentType = ""
    var timeout: String?
    var encoding: String?
    var acceptEncoding: String?
    var metadata = Metadata()
    /// Bytes of names and values so far, against the configured header list limit.
    var size = 0
    var tooLarge = false
    var invalidMetadata = false

    /// Records one header field; the name is already lower-case (nghttp2 enforces it).
    mutating func add(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, limit: Int) {
        size += name.count + value.count + 32
        if size > limit {
            tooLarge = true
            return
        }
        // Header names are short: these Strings stay inline, no allocation.
        let key = String(decoding: name, as: UTF8.self)
        switch key {
        case ":method": method = String(decoding: value, as: UTF8.self)
        case ":path": path = String(decoding: value, as: UTF8.self)
        case "content-type": contentType = String(decoding: value, as: UTF8.self)
        case "grpc-timeout": timeout = String(decoding: value, as: UTF8.self)
        case "grpc-encoding": encoding = String(decoding: value, as: UTF8.self)
        case "grpc-accept-encoding": acceptEncoding = String(decoding: value, as: UTF8.self)
        default:
            guard !Metadata.isReserved(key) else { return }
            if !metadata.addWireHeader(name: key, value: String(decoding: value, as: UTF8.self)) {
                invalidMetadata = true
            }
        }
    }

    /// Whether the content-type is gRPC's (`application/grpc`, `+proto` or `;params`).
    var isGRPC: Bool {
        guard contentType.hasPrefix("application/grpc") else { return false }
        let rest = contentType.utf8.dropFirst(16)
        return rest.isEmpty || rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: ";")
    }
}
