internal import CNGHTTP2
import Codec
import NIOCore
import NIOSSL
import NIOTLS

/// One HTTP/2 client connection: an nghttp2 client session driven by the channel's bytes.
///
/// The session and every call's state live on the channel's event loop and are only touched
/// there. Output is drained from nghttp2 into one buffer and written with a single flush per
/// read batch, or per loop tick for calls started and messages sent outside a read.
final class ClientConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {  // confined to its event loop; `state` is the cross-thread part
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let configuration: GRPCClientConfiguration
    let eventLoop: any EventLoop
    let state = ConnectionState()
    /// Completed once the server's first SETTINGS arrive (or the connection fails first).
    let ready: EventLoopPromise<Void>
    private var readyDone = false

    private(set) var session: OpaquePointer?
    /// Read from any thread (requests are framed by the calling task), hence immutable.
    let allocator = ByteBufferAllocator()
    private var context: ChannelHandlerContext?
    private var calls: [Int32: ClientCall] = [:]
    /// The call the last nghttp2 callback was about: a response's callbacks come in a row for
    /// one stream, so this spares most of nghttp2's stream-map lookups. Cleared when that
    /// stream's call leaves `calls`.
    private var lastCall: (streamID: Int32, call: ClientCall)?
    /// The response header block being received. HTTP/2 delivers a block's fields without
    /// anything in between (HEADERS, then its CONTINUATIONs), so one block per connection
    /// serves every stream, and a call carries none of it.
    var responseHead = ResponseHead()
    private var inReadCycle = false
    private var flushScheduled = false
    private var closing = false
    private var closeAfterFlush = false
    private var goAway: (lastStreamID: Int32, errorCode: UInt32, debug: String)?
    /// Why the connection is ending, for calls still running when it goes.
    private var closeReason: String?

    private let scheme: String
    private let authority: String
    private var headers = RequestHeaders()
    /// Fields every request carries after `:path`, encoded once.
    private let commonHeaders: RequestHeaders

    init(configuration: GRPCClientConfiguration, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.ready = eventLoop.makePromise()
        self.scheme = configuration.tls == nil ? "http" : "https"
        let hostPart = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        self.authority = configuration.authority ?? "\(hostPart):\(configuration.port)"
        var common = RequestHeaders()
        common.add(":method", "POST")
        common.add(":scheme", scheme)
        common.add(":authority", authority)
        common.add("te", "trailers")
        common.add("user-agent", configuration.userAgent)
        common.add("grpc-accept-encoding", MessageEncoding.acceptHeaderValue)
        self.commonHeaders = common
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    private func start() {
        guard session == nil, !closing else { return }
        session = ClientSession.makeClient(userData: Unmanaged.passUnretained(self).toOpaque())
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(configuration.initialWindowSize)),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: configuration.connectionWindowSize))
        flushOutput()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session, !closing else { return }
        let buffer = unwrapInboundIn(data)
        inReadCycle = true
        let result = buffer.withUnsafeReadableBytes { bytes in
            nghttp2_session_mem_recv(session, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
        }
        if result < 0 {
            inReadCycle = false
            closeReason = "HTTP/2 protocol error from the server: \(String(cString: nghttp2_strerror(Int32(result))))"
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tlsEvent, negotiated != "h2" {
            closeReason = "the server did not negotiate HTTP/2 via ALPN (got \(negotiated ?? "none"))"
            close()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeReason == nil { closeReason = "connection error: \(error)" }
        close()
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        self.context = nil
    }

    /// Fails every call still running and frees the session. `nghttp2_session_del` does not
    /// call `on_stream_close`, so calls are ended here.
    private func teardown() {
        closing = true
        let status = CallStatus(code: .unavailable, message: closeReason ?? describeClose())
        state.refuseNewCalls(status)
        failReady(CallError(status: status))
        guard let session else { return }
        let open = calls
        calls.removeAll()
        lastCall = nil
        state.activeStreams.store(0, ordering: .relaxed)
        for call in open.values { call.connectionClosed(status) }
        nghttp2_session_del(session)
        self.session = nil
    }

    private func describeClose() -> String {
        if let goAway {
            return "connection closed after GOAWAY (\(StatusMapping.name(errorCode: goAway.errorCode))"
                + (goAway.debug.isEmpty ? ")" : ", \"\(goAway.debug)\")")
        }
        return "connection closed"
    }

    private func close() {
        guard !closing else { return }
        closing = true
        context?.close(promise: nil)
    }

    func failReady(_ error: CallError) {
        guard !readyDone else { return }
        readyDone = true
        ready.fail(error)
    }

    /// The connect timeout passed before the server's SETTINGS arrived.
    func readyTimedOut() {
        guard !readyDone else { return }
        closeReason = "timed out waiting for the server's HTTP/2 SETTINGS"
        failReady(CallError(.unavailable, closeReason!))
        close()
    }

    /// `GRPCConnection.close()`: GOAWAY, then close once it is written.
    func closeGracefully() {
        guard let session, !closing else { return }
        closeReason = "connection closed by the client"
        state.refuseNewCalls(CallStatus(code: .unavailable, message: closeReason!))
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        closeAfterFlush = true
        flushOutput()
        close()
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

    /// Drains nghttp2's output into one buffer and writes it with a single flush. Never
    /// called from inside an nghttp2 callback.
    private func flushOutput() {
        guard let session, let context else { return }
        guard context.channel.isWritable else { return }  // resumed by channelWritabilityChanged
        var output: ByteBuffer?
        while true {
            var chunk: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &chunk)
            if count < 0 {
                closeReason = "HTTP/2 send failed: \(String(cString: nghttp2_strerror(Int32(count))))"
                close()
                return
            }
            guard count > 0, let chunk else { break }
            if output == nil { output = allocator.buffer(capacity: max(count, 4096)) }
            output!.writeBytes(UnsafeRawBufferPointer(start: chunk, count: count))
            if output!.readableBytes >= 256 * 1024 { break }
        }
        if let output {
            context.writeAndFlush(wrapOutboundOut(output), promise: nil)
            if nghttp2_session_want_write(session) != 0 { scheduleFlush() }
        }
        if closeAfterFlush || (nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0) {
            close()
        }
    }

    // MARK: - Calls

    /// Submits a call's request headers (with a data provider that pulls its messages).
    /// Streams beyond the server's MAX_CONCURRENT_STREAMS wait in nghttp2's queue.
    func submit(_ call: ClientCall) {
        guard !call.hasEnded else { return }  // cancelled before it started
        guard let session, !closing else {
            call.finish(state.refusalStatus ?? CallStatus(code: .unavailable, message: closeReason ?? "connection closed"))
            return
        }
        if let refusal = state.refusalStatus {
            call.finish(refusal)
            return
        }
        headers.removeAll()
        headers.add(":path", call.path)
        headers.add(encoded: commonHeaders)
        headers.add("content-type", call.contentType)
        if let timeout = call.timeout { headers.add("grpc-timeout", GRPCTimeout.format(timeout)) }
        if call.compression { headers.add("grpc-encoding", "gzip") }
        for (name, value) in call.metadata.wireHeaders { headers.add(name, value) }
        var provider = nghttp2_data_provider()
        provider.read_callback = clientReadRequestData
        let userData = Unmanaged.passUnretained(call).toOpaque()
        let streamID = headers.withNameValues { nva, count in
            nghttp2_submit_request(session, nil, nva, count, &provider, userData)
        }
        guard streamID > 0 else {
            call.finish(
                CallStatus(code: .unavailable, message: "cannot start a stream: \(String(cString: nghttp2_strerror(streamID)))"))
            return
        }
        calls[streamID] = call
        state.activeStreams.add(1, ordering: .relaxed)
        call.submitted(streamID: streamID)
        scheduleFlush()
    }

    /// The block received so far, leaving an empty one for the next.
    func takeResponseHead() -> ResponseHead {
        var head = ResponseHead()
        swap(&head, &responseHead)
        return head
    }

    func call(_ streamID: Int32) -> ClientCall? {
        if let lastCall, lastCall.streamID == streamID { return lastCall.call }
        guard let session else { return nil }
        let found: ClientCall?
        if let raw = nghttp2_session_get_stream_user_data(session, streamID) {
            found = Unmanaged<ClientCall>.fromOpaque(raw).takeUnretainedValue()
        } else {
            found = calls[streamID]
        }
        if let found { lastCall = (streamID, found) }
        return found
    }

    /// Takes a call out of `calls` (and out of the lookup cache).
    private func removeCall(_ streamID: Int32) -> ClientCall? {
        if lastCall?.streamID == streamID { lastCall = nil }
        return calls.removeValue(forKey: streamID)
    }

    /// Resets a call's stream (the call has already ended locally).
    func reset(streamID: Int32, errorCode: UInt32) {
        guard let session else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
        if nghttp2_session_get_stream_user_data(session, streamID) == nil, removeCall(streamID) != nil {
            // Still queued behind MAX_CONCURRENT_STREAMS: nghttp2 marks the request cancelled
            // and drops it unsent once a slot frees, never touching the call again.
            state.activeStreams.subtract(1, ordering: .relaxed)
        }
        scheduleFlush()
    }

    /// nghttp2 closed a stream: completed, reset by either side, or refused after GOAWAY.
    func streamClosed(id: Int32, errorCode: UInt32) {
        guard let call = removeCall(id) else { return }
        state.activeStreams.subtract(1, ordering: .relaxed)
        var status: CallStatus?
        if !call.hasEnded {
            if errorCode == NGHTTP2_REFUSED_STREAM.rawValue, let goAway, id > goAway.lastStreamID {
                status = CallStatus(code: .unavailable, message: "the server is going away; stream not processed (\(describeGoAway(goAway)))")
            } else if errorCode == NGHTTP2_NO_ERROR.rawValue {
                status = CallStatus(code: .internalError, message: "the server closed the stream without sending trailers")
            } else {
                status = CallStatus(
                    code: StatusMapping.code(resetErrorCode: errorCode),
                    message: "stream reset by the server (RST_STREAM \(StatusMapping.name(errorCode: errorCode)))")
            }
        }
        call.streamClosed(status: status)
    }

    /// A request's HEADERS were never sent (GOAWAY received, or cancelled while queued).
    func requestNotSent(id: Int32, libraryError: Int32) {
        guard let call = removeCall(id) else { return }
        state.activeStreams.subtract(1, ordering: .relaxed)
        let message: String
        if let goAway {
            message = "the server is going away; stream not started (\(describeGoAway(goAway)))"
        } else {
            message = "stream not started: \(String(cString: nghttp2_strerror(libraryError)))"
        }
        call.streamClosed(status: CallStatus(code: .unavailable, message: message))
    }

    func settingsReceived() {
        guard !readyDone else { return }
        readyDone = true
        ready.succeed()
    }

    func goAwayReceived(lastStreamID: Int32, errorCode: UInt32, debug: String) {
        goAway = (lastStreamID, errorCode, debug)
        state.refuseNewCalls(CallStatus(code: .unavailable, message: "the server is going away (\(describeGoAway(goAway!)))"))
        // Requests still queued behind MAX_CONCURRENT_STREAMS can never start now: fail them at
        // once, not when a running stream frees a slot (which may be much later). nghttp2 drops
        // a queued request that was reset unsent.
        guard let session else { return }
        let queued = calls.keys.filter { $0 > lastStreamID && nghttp2_session_get_stream_user_data(session, $0) == nil }
        for id in queued {
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_REFUSED_STREAM.rawValue)
            requestNotSent(id: id, libraryError: 0)
        }
        if !queued.isEmpty { scheduleFlush() }
    }

    private func describeGoAway(_ goAway: (lastStreamID: Int32, errorCode: UInt32, debug: String)) -> String {
        "GOAWAY \(StatusMapping.name(errorCode: goAway.errorCode))" + (goAway.debug.isEmpty ? "" : " \"\(goAway.debug)\"")
    }
}
