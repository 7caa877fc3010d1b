import Codec

/// How HTTP/2 and HTTP failures become gRPC status codes on the client, as gRPC specifies
/// (doc/http-grpc-status-mapping.md and doc/PROTOCOL-HTTP2.md, "Errors").
enum StatusMapping {
    /// The status of a response whose `:status` is not 200.
    static func code(httpStatus: Int) -> StatusCode {
        switch httpStatus {
        case 400: .internalError
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .unimplemented
        case 429, 502, 503, 504: .unavailable
        default: .unknown
        }
    }

    /// The status of a stream the server reset with `RST_STREAM(errorCode)`.
    static func code(resetErrorCode errorCode: UInt32) -> StatusCode {
        switch errorCode {
        case 0x7: .unavailable  // REFUSED_STREAM: not processed, safe to retry
        case 0x8: .cancelled  // CANCEL
        case 0xB: .resourceExhausted  // ENHANCE_YOUR_CALM
        case 0xC: .permissionDenied  // INADEQUATE_SECURITY
        default: .internalError  // NO_ERROR without trailers, PROTOCOL_ERROR, INTERNAL_ERROR, ...
        }
    }

    /// The HTTP/2 error code's name, for status messages.
    static func name(errorCode: UInt32) -> String {
        let names = [
            "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
            "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
            "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
        ]
        return errorCode < names.count ? names[Int(errorCode)] : "0x\(String(errorCode, radix: 16))"
    }
}
