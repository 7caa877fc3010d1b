import Codec
#if canImport(Glibc)
import Glibc
#endif

/// The request headers of one stream, as they arrive from nghttp2.
///
/// Parsed straight from nghttp2's byte buffers: the headers every gRPC request carries are
/// recognised by their bytes and never become Strings unless their value is needed.
struct RequestHead {
    var isPOST = false
    var method = ""
    var path = ""
    /// The method `path` names, resolved with the path (see `PathCache`); nil if unknown.
    var route: RPCMethod?
    var contentType = ""
    var isGRPCContentType = false
    var timeout: String?
    var encoding: String?
    var acceptEncoding: String?
    var metadata = Metadata()
    /// Bytes of names and values so far, against the configured header list limit.
    var size = 0
    var tooLarge = false
    var invalidMetadata = false

    /// Records one header field; the name is already lower-case (nghttp2 enforces it).
    mutating func add(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, limit: Int, paths: inout PathCache) {
        size += name.count + value.count + 32
        if size > limit {
            tooLarge = true
            return
        }
        switch name.count {
        case 2 where name.equals("te"):
            return
        case 5 where name.equals(":path"):
            (path, route) = paths.entry(for: value)
            return
        case 7 where name.equals(":method"):
            isPOST = value.equals("POST")
            if !isPOST { method = String(decoding: value, as: UTF8.self) }
            return
        case 7 where name.equals(":scheme"), 10 where name.equals(":authority"),
            10 where name.equals("user-agent"):
            return
        case 12 where name.equals("content-type"):
            if value.equals("application/grpc") {
                isGRPCContentType = true
            } else {
                contentType = String(decoding: value, as: UTF8.self)
                isGRPCContentType = Self.isGRPC(contentType)
            }
            return
        case 12 where name.equals("grpc-timeout"):
            timeout = String(decoding: value, as: UTF8.self)
            return
        case 13 where name.equals("grpc-encoding"):
            encoding = String(decoding: value, as: UTF8.self)
            return
        case 20 where name.equals("grpc-accept-encoding"):
            acceptEncoding = String(decoding: value, as: UTF8.self)
            return
        default:
            break
        }
        let key = String(decoding: name, as: UTF8.self)
        guard !Metadata.isReserved(key) else { return }
        if !metadata.addWireHeader(name: key, value: String(decoding: value, as: UTF8.self)) {
            invalidMetadata = true
        }
    }

    /// Whether a content-type is gRPC's (`application/grpc`, `+proto` or `;params`).
    static func isGRPC(_ contentType: String) -> Bool {
        guard contentType.hasPrefix("application/grpc") else { return false }
        let rest = contentType.utf8.dropFirst(16)
        return rest.isEmpty || rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: ";")
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Byte equality with an ASCII literal, without generic sequence machinery.
    @inline(__always)
    func equals(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, literal.utf8Start, count) == 0)
    }
}

/// The `:path` strings a connection has seen, with the methods they name: a client calls
/// few methods, so each path becomes a String and is looked up in the router once per
/// connection instead of once per call (hashing a path was ~1% of a call at c1m1).
struct PathCache {
    private let router: RPCRouter
    private var entries: [(bytes: [UInt8], path: String, method: RPCMethod?)] = []

    init(router: RPCRouter) {
        self.router = router
    }

    mutating func entry(for bytes: UnsafeBufferPointer<UInt8>) -> (path: String, method: RPCMethod?) {
        guard bytes.count > 0 else { return ("", nil) }
        for entry in entries where entry.bytes.count == bytes.count {
            let same = entry.bytes.withUnsafeBufferPointer { memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }
            if same { return (entry.path, entry.method) }
        }
        let path = String(decoding: bytes, as: UTF8.self)
        let method = router.method(forPath: path)
        if entries.count < 16 { entries.append((Array(bytes), path, method)) }
        return (path, method)
    }
}
