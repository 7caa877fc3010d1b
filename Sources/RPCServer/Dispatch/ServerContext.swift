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
    /// Who the caller is, as the authentication interceptors established it.
    public var caller: Caller = .anonymous
    /// The call, for response metadata. Unowned: the call outlives its handler.
    unowned let call: any RPCCall

    public init(path: String, metadata: Metadata, deadline: ContinuousClock.Instant?, peer: String, call: any RPCCall) {
        self.path = path
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
        self.call = call
    }

    /// Metadata sent with the response headers; effective only before the first message.
    public func setInitialMetadata(_ metadata: Metadata) {
        call.setInitialMetadata(metadata)
    }

    /// Metadata sent with the status at the end of the call.
    public func addTrailingMetadata(_ metadata: Metadata) {
        call.addTrailingMetadata(metadata)
    }

    /// Ends the call, OK when `error` is nil, else with the status it maps to, from any task or
    /// thread (a timer, another stream): the handler is cancelled, a write waiting for the
    /// client fails.
    public func endCall(_ error: (any Error)?) {
        call.end(from: error)
    }

    /// Whether the request message the handler took last arrived compressed: the unary
    /// request, or the one a request stream's iterator returned last.
    public var requestCompressed: Bool { call.lastRequestCompressed }

    /// Compresses the response messages sent from now on, or sends them plain. Compression
    /// needs the client to accept gzip (`grpc-accept-encoding`) and, for the first compressed
    /// message, response headers not yet sent; otherwise messages go plain.
    public func setResponseCompression(_ enabled: Bool) {
        call.setResponseCompression(enabled)
    }

    /// Time left before the deadline (zero once passed), nil without a deadline.
    public var timeRemaining: Duration? {
        deadline.map { max(.zero, $0 - .now) }
    }
}
