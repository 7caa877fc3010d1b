public import Codec

/// The final status of a call: code, decoded `grpc-message`, and the trailing metadata.
public struct CallStatus: Sendable, Hashable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var trailers: Metadata

    public init(code: StatusCode, message: String = "", trailers: Metadata = Metadata()) {
        self.code = code
        self.message = message
        self.trailers = trailers
    }

    public static let ok = CallStatus(code: .ok)

    public var description: String { message.isEmpty ? code.name : "\(code.name): \(message)" }
}

/// Thrown by the typed calls (and by streams and sends once the call has ended) when the
/// status is not OK; also thrown by `GRPCConnection.connect` (UNAVAILABLE) when no connection
/// could be made.
public struct CallError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: CallStatus
    /// The response headers' metadata, empty when the call failed before any arrived.
    public var initialMetadata: Metadata

    public init(status: CallStatus, initialMetadata: Metadata = Metadata()) {
        self.status = status
        self.initialMetadata = initialMetadata
    }

    public init(_ code: StatusCode, _ message: String) {
        self.init(status: CallStatus(code: code, message: message))
    }

    public var code: StatusCode { status.code }

    public var description: String { status.description }
}
