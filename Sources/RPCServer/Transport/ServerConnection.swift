internal import CNGHTTP2
import Codec
import ServiceContextModule
import Logging
import NIOCore
import Storage  // Duration in whole units, saturating

/// One HTTP/2 connection: bytes from the socket go into nghttp2, which calls back with
/// headers and data per stream; responses come out of nghttp2 and are written once per read
/// batch (or once per batch of late completions).
///
/// The nghttp2 session lives on the channel's event loop and is only touched there; so do
/// all streams and the handlers' tasks (see `EventLoopTaskExecutor`).
final class ServerConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {  // confined to its event loop
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let configuration: ServerConfiguration
    let router: RPCRouter
    let executor: EventLoopTaskExecutor
    let registry: ConnectionRegistry
    let logger: Logger
    let eventLoop: any EventLoop
    private(set) var session: OpaquePointer?
    private(set) var allocator = ByteBufferAllocator()
    private(set) var peer = ""

    private var channelContext: ChannelHandlerContext?
    /// Open streams in no particular order; each knows its index (`slot`), so adding and
    /// removing one is O(1) without hashing (nghttp2's stream user data finds a stream by id).
    private var streams: [ServerStream] = []
    /// `:path` Strings already seen on this connection, with their methods (see `RequestHead`).
    var paths: PathCache
    /// The last flush's buffer, kept for the next one unless it grew large (an idle
    /// connection holds at most this much).
    private var outputBuffer: ByteBuffer?
    private static let keptOutputCapacity = 16 * 1024
    private var inReadCycle = false
    private var flushScheduled = false
    private var closing = false
    /// Close once the pending output (e.g. a GOAWAY) is written.
    private var closeAfterFlush = false
    private var accepted = false

    // Deadlines: one timer per connection, set for the earliest pending deadline.
    private var deadlineTimer: Scheduled<Void>?
    private var deadlineTimerAt: NIODeadline?

    // Keepalive and PING policy.
    /// When the last bytes arrived (keepalive; the base of deadlines of calls opened in that read).
    private(set) var lastReadAt = NIODeadline.now()
    private var keepaliveTimer: Scheduled<Void>?
    private var keepaliveAckTimer: Scheduled<Void>?
    private var lastPingReceivedAt: NIODeadline?
    private var pingStrikes = 0
    /// Trace and span ids of this connection's calls.
    private var traceIDs = TraceIDGenerator()
    private var idleTimer: Scheduled<Void>?

    // Graceful shutdown.
    private(set) var draining = false
    private var finalGoAwaySent = false

    private static let keepalivePingData: [UInt8] = Array("tallyka1".utf8)
    private static let drainPingData: [UInt8] = Array("tallydr1".utf8)

    init(
        configuration: ServerConfiguration, router: RPCRouter, executor: EventLoopTaskExecutor,
        registry: ConnectionRegistry, logger: Logger
    ) {
        self.configuration = configuration
        self.router = router
        self.executor = executor
        self.registry = registry
        self.logger = logger
        self.eventLoop = executor.eventLoop
        self.paths = PathCache(router: router)
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        channelContext = context
        allocator = context.channel.allocator
        peer = context.channel.remoteAddress.map(Self.describe) ?? "unknown"
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard session == nil else { return }
        session = NGHTTP2Session.makeServer(userData: Unmanaged.passUnretained(self).toOpaque())
        submitSettings()
        accepted = registry.add(self)
        if !accepted {
            logger.info("connection refused: connection limit reached", metadata: ["peer": "\(peer)"])
            let reason = Array("max connections reached".utf8)
            nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, NGHTTP2_ENHANCE_YOUR_CALM.rawValue, reason, reason.count)
            flushOutput()
            close()
            return
        }
        logger.debug("connection open", metadata: ["peer": "\(peer)"])
        scheduleKeepalive()
        scheduleIdleTimer()
        scheduleMaxAge()
        flushOutput()
    }

    private func submitSettings() {
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(configuration.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(configuration.initialStreamWindowSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(configuration.maxHeaderListSize)),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(configuration.connectionWindowSize))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session, !closing else { return }
        let buffer = unwrapInboundIn(data)
        inReadCycle = true
        lastReadAt = .now()
        let result = buffer.withUnsafeReadableBytes { bytes in
            nghttp2_session_mem_recv(session, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
        }
        if result < 0 {
            inReadCycle = false
            logger.debug(
                "HTTP/2 protocol error, closing", metadata: ["peer": "\(peer)", "error": "\(String(cString: nghttp2_strerror(Int32(result))))"])
            flushOutput()
            close()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        flushOutput()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flushOutput() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        channelContext = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        close()
    }

    /// Ends every call (their handlers are cancelled) and frees the session. nghttp2 does not
    /// call `on_stream_close` from `nghttp2_session_del`, so streams are closed here.
    private func teardown() {
        guard let session else { return }
        closing = true
        for stream in streams { stream.streamClosed() }
        registry.statistics.streamsClosed(streams.count)
        streams.removeAll()
        deadlineTimer?.cancel()
        keepaliveTimer?.cancel()
        keepaliveAckTimer?.cancel()
        idleTimer?.cancel()
        nghttp2_session_del(session)
        self.session = nil
        if accepted { registry.remove(self) }
        logger.debug("connection closed", metadata: ["peer": "\(peer)"])
    }

    private func close() {
        guard !closing else { return }
        closing = true
        channelContext?.close(promise: nil)
    }

    // MARK: - Output

    /// Flushes soon: at the end of the current read batch, or on the next loop tick.
    func scheduleFlush() {
        guard !inReadCycle, !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute {
            self.flushScheduled = false
            self.flushOutput()
        }
    }

    /// Drains nghttp2's output into one buffer and writes it with a single flush.
    ///
    /// Never called from inside an nghttp2 callback (nghttp2 forbids `mem_send` during
    /// `mem_recv`): callbacks use `scheduleFlush`, which the end of the read batch honours.
    private func flushOutput() {
        guard let session, let context = channelContext else { return }
        guard context.channel.isWritable else { return }  // resumed by channelWritabilityChanged
        // The buffer of the previous flush is reused when the socket took all of it (NIO has
        // let go of it, so clearing it does not copy): no allocation per flush.
        var output = outputBuffer ?? allocator.buffer(capacity: 4096)
        outputBuffer = nil
        output.clear()
        while true {
            var chunk: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &chunk)
            if count < 0 {
                logger.debug("nghttp2 send failed", metadata: ["peer": "\(peer)"])
                close()
                return
            }
            guard count > 0, let chunk else { break }
            output.writeBytes(UnsafeRawBufferPointer(start: chunk, count: count))
            if output.readableBytes >= 256 * 1024 { break }
        }
        if output.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(output), promise: nil)
            if output.capacity <= Self.keptOutputCapacity { outputBuffer = output }
            if nghttp2_session_want_write(session) != 0 && !closeAfterFlush { scheduleFlush() }
        }
        if closeAfterFlush || nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 {
            close()
        }
    }

    // MARK: - Streams (called from the nghttp2 callbacks)

    func beginStream(id: Int32) {
        guard let session else { return }
        let stream = ServerStream(id: id, connection: self)
        stream.slot = streams.count
        streams.append(stream)
        registry.statistics.streamOpened()
        nghttp2_session_set_stream_user_data(session, id, Unmanaged.passUnretained(stream).toOpaque())
        idleTimer?.cancel()
        idleTimer = nil
    }

    func stream(_ id: Int32) -> ServerStream? {
        guard let session, let raw = nghttp2_session_get_stream_user_data(session, id) else { return nil }
        return Unmanaged<ServerStream>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The request headers are complete: route, validate, and start the handler.
    func requestHeadersComplete(_ stream: ServerStream, endStream: Bool) {
        let head = stream.request
        if head.tooLarge {
            stream.finish(error: RPCError(.resourceExhausted, "request headers exceed \(configuration.maxHeaderListSize) bytes"))
            return
        }
        guard head.isPOST else {
            stream.rejectHTTP(status: 405, message: "gRPC requires POST, got \(head.method)")
            return
        }
        guard head.isGRPCContentType else {
            stream.rejectHTTP(status: 415, message: "invalid gRPC request content-type \"\(head.contentType)\"")
            return
        }
        // A gRPC call from here on: traced, and counted in the metrics whatever its end.
        stream.trace = CallTrace(metadata: head.metadata, random: &traceIDs)
        stream.callMetrics = head.route?.metrics ?? router.unknownMethodMetrics
        if let metrics = stream.callMetrics {
            stream.startedAt = lastReadAt
            metrics.callStarted()
        }
        if head.invalidMetadata {
            stream.finish(error: RPCError(.internalError, "invalid base64 in -bin metadata"))
            return
        }
        guard let method = head.route else {
            stream.finish(error: unknownMethodError(head.path))
            return
        }
        var encoding: MessageEncoding?
        if let name = head.encoding {
            guard let known = MessageEncoding(rawValue: name) else {
                var metadata = Metadata()
                metadata.add("grpc-accept-encoding", MessageEncoding.acceptHeaderValue)
                stream.finish(
                    error: RPCError(.unimplemented, "grpc: Decompressor is not installed for grpc-encoding \"\(name)\"", metadata: metadata))
                return
            }
            encoding = known
        }
        var timeout: Duration?
        if let value = head.timeout {
            guard let parsed = GRPCTimeout.parse(value) else {
                stream.finish(error: RPCError(.internalError, "malformed grpc-timeout \"\(value)\""))
                return
            }
            timeout = parsed
        }
        // Answer compressed requests in kind when the client accepts it (as grpc-go does).
        let responseEncoding: MessageEncoding? =
            encoding == .gzip && head.acceptEncoding.map { MessageEncoding.preferred(fromAcceptHeader: $0) == .gzip } == true
            ? .gzip : nil
        stream.open(method: method, encoding: encoding, responseEncoding: responseEncoding, timeout: timeout)
        if let deadline = stream.deadline { trackDeadline(deadline) }
        if endStream { stream.endOfInput() }
        startIfReady(stream)
    }

    private func unknownMethodError(_ path: String) -> RPCError {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].isEmpty, router.serviceNames.contains(String(parts[1])) {
            return RPCError(.unimplemented, "unknown method \(parts[2]) for service \(parts[1])")
        }
        if parts.count == 3, parts[0].isEmpty {
            return RPCError(.unimplemented, "unknown service \(parts[1])")
        }
        return RPCError(.unimplemented, "malformed method name: \"\(path)\"")
    }

    func startIfReady(_ stream: ServerStream) {
        guard let method = stream.method, stream.startHandler() else { return }
        pingStrikes = 0
        let context = stream.trace?.serviceContext ?? .topLevel
        let task = Task.immediate(executorPreference: executor) {
            await ServiceContext.withValue(context) { await method.body(stream) }
            stream.handlerReturned()
        }
        // A handler that never suspended has already returned: keeping its task would only
        // make the stream's close cancel a finished task (a status-record lock per call).
        if stream.isHandlerRunning { stream.task = task }
    }

    func streamClosed(id: Int32, errorCode: UInt32) {
        guard let stream = stream(id), stream.slot < streams.count, streams[stream.slot] === stream else { return }
        let last = streams.removeLast()
        if last !== stream {
            streams[stream.slot] = last
            last.slot = stream.slot
        }
        registry.statistics.streamsClosed(1)
        stream.streamClosed()
        if streams.isEmpty {
            if draining { closeIfDrained() } else { scheduleIdleTimer() }
        }
    }

    /// Every call's end passes here: its metrics, its log line (failures at info, every call at
    /// debug, with its trace), the counters.
    func callFinished(_ stream: ServerStream, status: RPCError) {
        registry.statistics.recordCall(status.code)
        stream.callMetrics?.callFinished(
            status: status.code, duration: .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds) - Int64(stream.startedAt.uptimeNanoseconds)),
            sentBytes: stream.sentMessageBytes, receivedBytes: stream.receivedMessageBytes)
        if status.code == .ok {
            logger.debug("rpc", metadata: ["path": "\(stream.request.path)", "peer": "\(peer)", "trace_id": "\(stream.trace?.traceID ?? "-")"])
        } else {
            logger.info(
                "rpc failed",
                metadata: [
                    "path": "\(stream.request.path)", "code": "\(status.code.name)", "message": "\(status.message)",
                    "peer": "\(peer)", "trace_id": "\(stream.trace?.traceID ?? "-")",
                ])
        }
    }

    /// Maps whatever a handler threw to the status the client sees; internals never leak.
    func status(for error: any Error) -> RPCError {
        if let convertible = error as? any RPCErrorConvertible { return convertible.rpcError }
        if error is CancellationError { return RPCError(.cancelled, "the call was cancelled") }
        logger.error("handler threw an unexpected error", metadata: ["error": "\(String(reflecting: error))"])
        return RPCError(.unknown, "internal server error")
    }

    // MARK: - Deadlines

    private func trackDeadline(_ deadline: NIODeadline) {
        if let current = deadlineTimerAt, current <= deadline { return }
        deadlineTimer?.cancel()
        deadlineTimerAt = deadline
        deadlineTimer = eventLoop.scheduleTask(deadline: deadline) { self.expireDeadlines() }
    }

    private func expireDeadlines() {
        deadlineTimer = nil
        deadlineTimerAt = nil
        let now = NIODeadline.now()
        var next: NIODeadline?
        for stream in streams where !stream.finished {
            guard let deadline = stream.deadline else { continue }
            if deadline <= now {
                stream.deadlineExceeded()
            } else if next == nil || deadline < next! {
                next = deadline
            }
        }
        if let next { trackDeadline(next) }
        flushOutput()
    }

    // MARK: - Keepalive and PING policy

    func noteResponseActivity() {
        pingStrikes = 0
    }

    private func scheduleKeepalive() {
        guard let interval = configuration.keepaliveTime else { return }
        keepaliveTimer = eventLoop.scheduleTask(deadline: lastReadAt + .nanoseconds(interval.nanoseconds)) {
            self.keepaliveTick()
        }
    }

    private func keepaliveTick() {
        guard let interval = configuration.keepaliveTime, session != nil, !closing else { return }
        if NIODeadline.now() - lastReadAt < .nanoseconds(interval.nanoseconds) {
            scheduleKeepalive()
            return
        }
        Self.keepalivePingData.withUnsafeBufferPointer { _ = nghttp2_submit_ping(session, 0, $0.baseAddress) }
        flushOutput()
        keepaliveAckTimer = eventLoop.scheduleTask(in: .nanoseconds(configuration.keepaliveTimeout.nanoseconds)) {
            self.logger.debug("keepalive PING not acknowledged, closing", metadata: ["peer": "\(self.peer)"])
            self.goAway(error: NGHTTP2_NO_ERROR.rawValue, reason: "keepalive timeout")
            self.closeAfterFlush = true
            self.flushOutput()
        }
    }

    func pingReceived(ack: Bool, data: [UInt8]) {
        if ack {
            if data == Self.keepalivePingData {
                keepaliveAckTimer?.cancel()
                keepaliveAckTimer = nil
                scheduleKeepalive()
            } else if data == Self.drainPingData {
                sendFinalGoAway()
            }
            return
        }
        let now = NIODeadline.now()
        if let last = lastPingReceivedAt, now - last < .nanoseconds(allowedPingInterval.nanoseconds) {
            pingStrikes += 1
            if pingStrikes > configuration.maxPingStrikes {
                logger.info("too many pings, closing", metadata: ["peer": "\(peer)"])
                goAway(error: NGHTTP2_ENHANCE_YOUR_CALM.rawValue, reason: "too_many_pings")
                closeAfterFlush = true
                scheduleFlush()
            }
        }
        lastPingReceivedAt = now
    }

    /// The shortest interval between client PINGs that is not a strike: gRPC's minimum, or,
    /// with no call open and keepalive without calls not permitted, two hours (grpc-go's rule:
    /// such a client should not be pinging at all).
    private var allowedPingInterval: Duration {
        if streams.isEmpty && !configuration.permitKeepaliveWithoutCalls { return max(configuration.minPingInterval, .seconds(2 * 3600)) }
        return configuration.minPingInterval
    }

    /// At the connection's maximum age (±10%), GOAWAY as at shutdown: no new calls, those in
    /// flight get `maxConnectionAgeGrace`; the client reconnects, possibly to another instance.
    private func scheduleMaxAge() {
        guard let age = configuration.maxConnectionAge else { return }
        let jittered = Double(age.nanoseconds) * Double.random(in: 0.9...1.1)
        eventLoop.scheduleTask(in: .nanoseconds(Int64(jittered))) { [self] in
            guard session != nil, !closing, !draining else { return }
            logger.debug("connection reached its maximum age, GOAWAY", metadata: ["peer": "\(peer)"])
            beginGracefulShutdown(grace: configuration.maxConnectionAgeGrace)
        }
    }

    private func goAway(error: UInt32, reason: String) {
        guard let session else { return }
        let data = Array(reason.utf8)
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session), error, data, data.count)
    }

    private func scheduleIdleTimer() {
        guard let idle = configuration.maxConnectionIdle, idleTimer == nil else { return }
        idleTimer = eventLoop.scheduleTask(in: .nanoseconds(idle.nanoseconds)) {
            self.idleTimer = nil
            guard self.streams.isEmpty else { return }
            self.logger.debug("connection idle, closing", metadata: ["peer": "\(self.peer)"])
            self.beginGracefulShutdown(grace: .seconds(1))
        }
    }

    // MARK: - Graceful shutdown

    /// GOAWAY twice, as gRPC servers do: first a notice (no new streams, please), then after a
    /// PING round trip the final GOAWAY naming the last stream that will be served. Calls in
    /// flight run to completion, or are cancelled when `grace` runs out.
    func beginGracefulShutdown(grace: Duration?) {
        guard let session, !draining, !closing else { return }
        draining = true
        nghttp2_submit_shutdown_notice(session)
        Self.drainPingData.withUnsafeBufferPointer { _ = nghttp2_submit_ping(session, 0, $0.baseAddress) }
        flushOutput()
        eventLoop.scheduleTask(in: .seconds(1)) { self.sendFinalGoAway() }
        if let grace { eventLoop.scheduleTask(in: .nanoseconds(grace.nanoseconds)) { self.forceClose() } }
    }

    private func sendFinalGoAway() {
        guard let session, draining, !finalGoAwaySent else { return }
        finalGoAwaySent = true
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
            NGHTTP2_NO_ERROR.rawValue, nil, 0)
        scheduleFlush()
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard draining, finalGoAwaySent, streams.isEmpty else { return }
        closeAfterFlush = true
        scheduleFlush()
    }

    private func forceClose() {
        guard session != nil, !closing else { return }
        for stream in streams where !stream.finished { stream.shutdownGraceExpired() }
        sendFinalGoAway()
        closeAfterFlush = true
        flushOutput()
    }

    private static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v4(let v4): "\(v4.host):\(address.port ?? 0)"
        case .v6(let v6): "[\(v6.host)]:\(address.port ?? 0)"
        case .unixDomainSocket: "unix"
        }
    }
}
