public import Codec
public import NIOCore

/// The transport's side of one call, as the dispatch layer sees it.
///
/// Implemented by the HTTP/2 stream; confined to the connection's event loop, which is where
/// handlers run (see `EventLoopTaskExecutor`).
public protocol RPCCall: AnyObject, Sendable {
    var context: ServerContext { get }

    /// The next request message payload, or nil once the client half-closed.
    func receive() async throws -> ByteBuffer?

    /// The one request message of a unary or server-streaming call. The transport starts
    /// those handlers only once the whole request is in, so this never waits.
    func singleRequest() throws -> ByteBuffer

    /// Whether the request message taken last (by `receive` or `singleRequest`) arrived
    /// compressed.
    var lastRequestCompressed: Bool { get }

    /// Compresses the response messages sent from now on (gzip, when the client accepts it),
    /// or sends them plain.
    func setResponseCompression(_ enabled: Bool)

    /// Sends one response message, waiting while too much output is buffered.
    func send(_ message: some ProtobufMessage) async throws

    /// Metadata to send with the response headers (before the first message).
    func setInitialMetadata(_ metadata: Metadata)

    /// Adds metadata to send with the status.
    func addTrailingMetadata(_ metadata: Metadata)

    /// Ends the call: OK when `error` is nil, else the status the error maps to.
    func finish(error: (any Error)?)

    /// Sends the only response message and ends the call OK, in one go (unary fast path).
    func finish(with message: some ProtobufMessage)

    /// Ends the call from any task or thread, OK when `error` is nil, else with the status it
    /// maps to: the handler is cancelled and a `send` waiting for output room fails.
    func end(from elsewhere: (any Error)?)
}

extension RPCCall {
    public func end(from elsewhere: (any Error)?) { finish(error: elsewhere) }
}
