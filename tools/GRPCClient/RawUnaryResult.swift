public import Codec
public import NIOCore

/// How a unary call started with `GRPCConnection.startUnary` ended: its status and, when
/// that is OK, the single response payload, undecoded.
///
/// The checks `unary` makes before decoding are made here too: an OK call that did not
/// carry exactly one response message is reported as INTERNAL, so `message` is non-nil
/// exactly when `status.code` is OK.
public struct RawUnaryResult: Sendable {
    public var status: CallStatus
    /// The response headers' metadata; empty when the call failed before any arrived.
    public var initialMetadata: Metadata
    /// The response message payload (without the 5-byte prefix, decompressed).
    public var message: ByteBuffer?
    /// When the request's HEADERS frame went to the socket; nil when it never did (the call
    /// failed before it was sent). Load tools time "from the actual send" with it.
    public var requestSentAt: NIODeadline?

    public init(status: CallStatus, initialMetadata: Metadata, message: ByteBuffer?, requestSentAt: NIODeadline? = nil) {
        self.status = status
        self.initialMetadata = initialMetadata
        self.message = message
        self.requestSentAt = requestSentAt
    }

    init(_ outcome: ClientCall.UnaryOutcome) {
        self.initialMetadata = outcome.initialMetadata ?? Metadata()
        self.requestSentAt = outcome.requestSentAt
        guard outcome.status.code == .ok else {
            self.status = outcome.status
            self.message = nil
            return
        }
        guard outcome.messages.count == 1 else {
            let problem = outcome.messages.isEmpty ? "no response message" : "\(outcome.messages.count) response messages"
            self.status = CallStatus(
                code: .internalError, message: "unary call ended OK with \(problem)", trailers: outcome.status.trailers)
            self.message = nil
            return
        }
        self.status = outcome.status
        self.message = outcome.messages[0]
    }
}
