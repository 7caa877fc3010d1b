public import Codec
public import NIOCore
import NIOPosix
import NIOSSL

/// One HTTP/2 connection (an nghttp2 client session on a NIO channel) multiplexing many calls.
///
/// Thread-safe: calls may be started from any task. Calls beyond the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS wait in nghttp2's queue until a stream closes. After a
/// GOAWAY or once the connection is lost, new calls fail with UNAVAILABLE; calls on streams
/// the server did not process fail UNAVAILABLE too (safe to retry elsewhere).
///
/// The hot path stays on the connection's event loop: tasks started with
/// `Task(executorPreference: connection.taskExecutor)` start calls, send and read without
/// a thread hop, and all output of one loop tick goes out in one write and flush. A driver
/// that keeps streams busy (a load generator) chains unary calls with `startUnary` instead:
/// each completion runs on the loop and starts the next call, with no task in between.
public final class GRPCConnection: Sendable {
    public let configuration: GRPCClientConfiguration
    private let channel: any Channel
    private let handler: ClientConnection
    private let executor: EventLoopTaskExecutor

    private init(configuration: GRPCClientConfiguration, channel: any Channel, handler: ClientConnection) {
        self.configuration = configuration
        self.channel = channel
        self.handler = handler
        self.executor = EventLoopTaskExecutor(eventLoop: channel.eventLoop)
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Connects and waits for the server's HTTP/2 SETTINGS (so the first calls already know
    /// the server's stream limit). Throws `CallError` (UNAVAILABLE) when that fails or
    /// takes longer than `configuration.connectTimeout`.
    public static func connect(_ configuration: GRPCClientConfiguration, group: any EventLoopGroup) async throws -> GRPCConnection {
        let loop = group.next()
        let started = ContinuousClock.now
        let tlsContext: NIOSSLContext?
        do {
            tlsContext = try configuration.tls.map(makeTLSContext)
        } catch {
            throw CallError(.unavailable, "TLS configuration failed: \(error)")
        }
        let serverName = configuration.tls.flatMap { $0.serverName ?? (isIPAddress(configuration.host) ? nil : configuration.host) }
        let handler = ClientConnection(configuration: configuration, eventLoop: loop)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(ClientCall.nanoseconds(configuration.connectTimeout)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let target = "\(configuration.host):\(configuration.port)"
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            let failure = CallError(.unavailable, "cannot connect to \(target): \(error)")
            loop.execute { handler.failReady(failure) }
            throw failure
        }
        let remaining = configuration.connectTimeout - (ContinuousClock.now - started)
        let timer = loop.scheduleTask(in: .nanoseconds(max(0, ClientCall.nanoseconds(remaining)))) { handler.readyTimedOut() }
        do {
            try await handler.ready.futureResult.get()
            timer.cancel()
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            if let error = error as? CallError {
                throw CallError(.unavailable, "cannot connect to \(target): \(error.status.message)")
            }
            throw CallError(.unavailable, "cannot connect to \(target): \(error)")
        }
        return GRPCConnection(configuration: configuration, channel: channel, handler: handler)
    }

    /// The loop this connection's I/O and call state live on.
    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Runs tasks on this connection's event loop (see the type's documentation).
    public var taskExecutor: any TaskExecutor { executor }

    /// Streams open or queued on this connection.
    public var activeStreams: Int { handler.state.activeStreams.load(ordering: .relaxed) }

    /// False once the connection is closing or closed, or the server sent GOAWAY.
    public var isAcceptingCalls: Bool { handler.state.isAcceptingCalls }

    /// A unary call: one request, one response. Throws `CallError` for any status but OK
    /// (including CANCELLED when the awaiting task is cancelled).
    public func unary<Req: ProtobufMessage, Res: ProtobufMessage>(
        _ path: String, _ request: Req, as: Res.Type = Res.self,
        metadata: Metadata = [:], timeout: Duration? = nil
    ) async throws -> UnaryResponse<Res> {
        if let refusal = handler.state.refusalStatus { throw CallError(status: refusal) }
        var body = handler.allocator.buffer(capacity: request.encodedSize + 5)
        MessageFramer.frame(request, into: &body)
        let call = ClientCall(
            connection: handler, path: path, metadata: metadata, timeout: timeout, contentType: "application/grpc",
            compression: false, request: body, unary: true)
        let handler = self.handler
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ClientCall.UnaryOutcome, Never>) in
                Self.start(call, awaiting: .task(continuation), on: handler)
            }
        } onCancel: {
            call.cancel()
        }
        return try Self.unaryResponse(outcome)
    }

    /// Hands a unary call its outcome's taker and submits it, on the connection's loop.
    private static func start(_ call: ClientCall, awaiting completion: ClientCall.UnaryCompletion, on handler: ClientConnection) {
        if handler.eventLoop.inEventLoop {
            call.awaitUnary(completion)
            handler.submit(call)
        } else {
            handler.eventLoop.execute {
                call.awaitUnary(completion)
                handler.submit(call)
            }
        }
    }

    /// A unary call whose outcome is handed to `completion` on this connection's event loop,
    /// once, with no task in between: the caller may start its next call right from the
    /// completion, which is how a closed-loop load generator keeps a stream busy without a
    /// task wake-up per call.
    ///
    /// `framedRequest` is the request as gRPC frames it (5-byte prefix, then the payload;
    /// see `MessageFramer`), sent as it is: a caller sending the same bytes every time frames
    /// them once and passes the same buffer (it is never written to). Called on the loop, a
    /// call that cannot start (connection closed or going away: UNAVAILABLE) completes before
    /// `startUnary` returns. The completion may run inside the connection's HTTP/2 processing,
    /// so it must not block. Deadlines, cancellation (`cancel()` on the returned call), flow
    /// control and GOAWAY behave as for `unary`.
    @discardableResult
    public func startUnary(
        _ path: String, framedRequest: ByteBuffer, metadata: Metadata = [:], timeout: Duration? = nil,
        completion: @escaping @Sendable (RawUnaryResult) -> Void
    ) -> ClientCall {
        let call = ClientCall(
            connection: handler, path: path, metadata: metadata, timeout: timeout, contentType: "application/grpc",
            compression: false, request: framedRequest, unary: true)
        Self.start(call, awaiting: .callback(completion), on: handler)
        return call
    }

    private static func unaryResponse<Res: ProtobufMessage>(_ outcome: ClientCall.UnaryOutcome) throws -> UnaryResponse<Res> {
        let result = RawUnaryResult(outcome)
        guard let payload = result.message else {
            throw CallError(status: result.status, initialMetadata: result.initialMetadata)
        }
        do {
            let message = try Res(protobuf: payload)
            return UnaryResponse(message: message, initialMetadata: result.initialMetadata, trailers: result.status.trailers)
        } catch {
            throw CallError(
                status: CallStatus(
                    code: .internalError, message: "failed to decode the response: \(error.description)", trailers: result.status.trailers),
                initialMetadata: result.initialMetadata)
        }
    }

    /// Starts a call of any kind; send, finish and read through the returned `ClientCall`.
    /// Throws `CallError` (UNAVAILABLE) when the connection no longer takes calls.
    ///
    /// `contentType` and `sendRaw` exist for tests of what servers do with odd requests.
    public func makeCall(
        _ path: String, metadata: Metadata = [:], timeout: Duration? = nil,
        contentType: String = "application/grpc", compression: Bool = false
    ) throws -> ClientCall {
        if let refusal = handler.state.refusalStatus { throw CallError(status: refusal) }
        let call = ClientCall(
            connection: handler, path: path, metadata: metadata, timeout: timeout, contentType: contentType,
            compression: compression, request: nil, unary: false)
        let handler = self.handler
        if handler.eventLoop.inEventLoop {
            handler.submit(call)
        } else {
            handler.eventLoop.execute { handler.submit(call) }
        }
        return call
    }

    /// Sends GOAWAY and closes the connection; calls still running fail with UNAVAILABLE.
    public func close() async {
        let handler = self.handler
        eventLoop.execute { handler.closeGracefully() }
        try? await channel.closeFuture.get()
    }

    private static func makeTLSContext(_ tls: GRPCClientConfiguration.TLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["h2"]
        if let path = tls.caCertificatePath {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
        }
        if tls.insecure {
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    private static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
