public import Codec
public import NIOCore
import NIOPosix
import NIOSSL

/// One HTTP/2 connection to a gRPC server (an nghttp2 client session on a NIO channel),
/// multiplexing any number of calls. Calls may be started from any task or thread.
public final class GRPCConnection: Sendable {
    public let configuration: GRPCClientConfiguration
    public let eventLoop: any EventLoop
    let channel: any Channel
    let handler: ClientConnectionHandler

    private init(configuration: GRPCClientConfiguration, channel: any Channel, handler: ClientConnectionHandler) {
        self.configuration = configuration
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.handler = handler
    }

    /// Connects; throws a `CallError` with UNAVAILABLE when the server cannot be reached.
    public static func connect(_ configuration: GRPCClientConfiguration, group: any EventLoopGroup) async throws -> GRPCConnection {
        let eventLoop = group.next()
        let handler = ClientConnectionHandler(configuration: configuration, eventLoop: eventLoop)
        let sslContext: NIOSSLContext?
        if let tls = configuration.tls {
            var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
            tlsConfiguration.applicationProtocols = ["h2"]
            if tls.insecure { tlsConfiguration.certificateVerification = .none }
            if let path = tls.caCertificatePath { tlsConfiguration.trustRoots = .file(path) }
            sslContext = try NIOSSLContext(configuration: tlsConfiguration)
        } else {
            sslContext = nil
        }
        let serverName = configuration.tls?.serverName ?? configuration.host
        let timeout = configuration.connectTimeout.components
        let bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.milliseconds(timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let tlsHandler = try NIOSSLClientHandler(
                            context: sslContext, serverHostname: serverName.first?.isNumber == true ? nil : serverName)
                        try channel.pipeline.syncOperations.addHandler(tlsHandler)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        do {
            let channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
            return GRPCConnection(configuration: configuration, channel: channel, handler: handler)
        } catch {
            throw CallError(status: CallStatus(
                code: .unavailable, message: "cannot connect to \(configuration.host):\(configuration.port): \(error)"))
        }
    }

    /// A unary call; throws `CallError` unless the status is OK.
    public func unary<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String, _ request: Request, as _: Response.Type = Response.self,
        metadata: Metadata = Metadata(), timeout: Duration? = nil, compression: MessageEncoding? = nil
    ) async throws -> UnaryResponse<Response> {
        var framed = ByteBuffer()
        MessageFramer.frame(request, into: &framed, compression: compression)
        let call = start(path, metadata: metadata, timeout: timeout, contentType: "application/grpc",
                         compression: compression, firstRequest: framed, finished: true)
        let (messages, status, initialMetadata) = await call.collect()
        guard status.code == .ok else { throw CallError(status: status, initialMetadata: initialMetadata) }
        guard messages.count == 1 else {
            throw CallError(
                status: CallStatus(code: .internalError, message: "expected one response message, got \(messages.count)", trailers: status.trailers),
                initialMetadata: initialMetadata)
        }
        do {
            return UnaryResponse(message: try Response(protobuf: messages[0]), initialMetadata: initialMetadata, trailers: status.trailers)
        } catch {
            throw CallError(status: CallStatus(code: .internalError, message: "\(error)"), initialMetadata: initialMetadata)
        }
    }

    /// A call of any kind: send with `send`, end with `finishSending`, read `responses`.
    public func makeCall(
        _ path: String, metadata: Metadata = Metadata(), timeout: Duration? = nil,
        contentType: String = "application/grpc", compression: MessageEncoding? = nil
    ) -> ClientCall {
        start(path, metadata: metadata, timeout: timeout, contentType: contentType, compression: compression,
              firstRequest: nil, finished: false)
    }

    private func start(
        _ path: String, metadata: Metadata, timeout: Duration?, contentType: String, compression: MessageEncoding?,
        firstRequest: ByteBuffer?, finished: Bool
    ) -> ClientCall {
        var headers = ClientHeaderBlock()
        headers.add(":method", "POST")
        headers.add(":scheme", handler.scheme)
        headers.add(":path", path)
        headers.add(":authority", handler.authority)
        headers.add("content-type", contentType)
        headers.add("te", "trailers")
        headers.add("user-agent", configuration.userAgent)
        headers.add("grpc-accept-encoding", MessageEncoding.acceptHeaderValue)
        if let compression { headers.add("grpc-encoding", compression.rawValue) }
        if let timeout { headers.add("grpc-timeout", GRPCTimeout.format(timeout)) }
        for (name, value) in metadata.wireHeaders { headers.add(name, value) }
        let call = ClientCall(handler: handler, path: path, headers: headers, firstRequest: firstRequest, finished: finished)
        let handler = self.handler
        let open = { @Sendable in
            handler.open(call, headers: call.headers)
            if let timeout { call.startDeadline(timeout) }
        }
        if eventLoop.inEventLoop { open() } else { eventLoop.execute(open) }
        return call
    }

    /// Calls open on this connection now.
    public var activeStreams: Int {
        get async { (try? await eventLoop.submit { self.handler.activeCalls }.get()) ?? 0 }
    }

    /// Sends GOAWAY and closes; calls still open end with UNAVAILABLE.
    public func close() async {
        let handler = self.handler
        try? await eventLoop.flatSubmit { handler.close() }.get()
    }
}

