public import Codec

/// How a call ended: the gRPC status, its message and the trailing metadata.
public struct CallStatus: Sendable, Hashable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var trailers: Metadata

    public init(code: StatusCode, message: String, trailers: Metadata = Metadata()) {
        self.code = code
        self.message = message
        self.trailers = trailers
    }

    public static let ok = CallStatus(code: .ok, message: "")

    public var description: String { message.isEmpty ? code.name : "\(code.name): \(message)" }
}

/// Thrown by the typed calls when a call ends with a status other than OK.
public struct CallError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: CallStatus
    public var initialMetadata: Metadata

    public init(status: CallStatus, initialMetadata: Metadata = Metadata()) {
        self.status = status
        self.initialMetadata = initialMetadata
    }

    public var description: String { status.description }
}

/// A unary response with the metadata around it.
public struct UnaryResponse<Message: Sendable>: Sendable {
    public var message: Message
    public var initialMetadata: Metadata
    public var trailers: Metadata
}

/// gRPC's mapping of an HTTP status without grpc-status (doc/http-grpc-status-mapping.md).
enum HTTPStatusMapping {
    static func code(forHTTPStatus status: Int) -> StatusCode {
        switch status {
        case 400: .internalError
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .unimplemented
        case 429, 502, 503, 504: .unavailable
        default: .unknown
        }
    }
}
