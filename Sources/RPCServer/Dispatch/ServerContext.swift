public import Codec

/// What a handler knows about its call besides the messages: never HTTP/2 details.
///
/// Cancellation (client RST_STREAM, deadline, shutdown) arrives as Swift task cancellation.
public struct ServerContext: Sendable {
    /// The method path, e.g. `/tally.v1.EventService/Track`.
    public let path: String
    /// The client's custom metadata (reserved HTTP/2 and gRPC headers excluded).
    public let metadata: Metadata
    /// When the call must end; nil when neither the client nor the server set one.
    public let deadline: ContinuousClock.Instant?
    /// The remote address, e.g. `127.0.0.1:53122`.
    public let peer: String
    /// Metadata the handler wants sent back: initial (with the response headers, so set it
    /// before the first message) and trailing (with the status).
    public let response: ResponseMetadata

    public init(path: String, metadata: Metadata, deadline: ContinuousClock.Instant?, peer: String) {
        self.path = path
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
        self.response = ResponseMetadata()
    }

    /// Time left before the deadline (zero once passed), nil without a deadline.
    public var timeRemaining: Duration? {
        deadline.map { max(.zero, $0 - .now) }
    }
}

/// Response metadata a handler sets while it runs.
public final class ResponseMetadata: @unchecked Sendable {  // used only on the call's event loop
    public var initial = Metadata()
    public var trailing = Metadata()
}
