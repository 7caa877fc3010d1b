internal import CNGHTTP2
import Codec
import NIOCore

/// The client side of one HTTP/2 connection: an nghttp2 client session fed from the channel,
/// holding the calls in flight. Output is written once per read batch, or once per event-loop
/// tick for calls started outside a read (so many calls started together share one write).
final class ClientConnectionHandler: ChannelInboundHandler, @unchecked Sendable {  // confined to its event loop
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let configuration: GRPCClientConfiguration
    let eventLoop: any EventLoop
    let scheme: String
    let authority: String
    private(set) var session: OpaquePointer?
    private var context: ChannelHandlerContext?
    private var calls: [Int32: ClientCall] = [:]
    private var inReadCycle = false
    private var flushScheduled = false
    /// Why new calls fail at once: the server said GOAWAY or the connection is gone.
    private(set) var refusal: CallStatus?
    private var closePromises: [EventLoopPromise<Void>] = []

    init(configuration: GRPCClientConfiguration, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.scheme = configuration.tls == nil ? "http" : "https"
        self.authority = configuration.authority ?? "\(configuration.host):\(configuration.port)"
    }

    var activeCalls: Int { calls.count }

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
        guard session == nil else { return }
        session = ClientSession.make(userData: Unmanaged.passUnretained(self).toOpaque())
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(configuration.initialWindowSize)),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(configuration.connectionWindowSize))
        flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        let buffer = unwrapInboundIn(data)
        inReadCycle = true
        let result = buffer.withUnsafeReadableBytes { bytes in
            nghttp2_session_mem_recv(session, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
        }
        if result < 0 {
            inReadCycle = false
            let reason = String(cString: nghttp2_strerror(Int32(result)))
            failAll(CallStatus(code: .unavailable, message: "HTTP/2 protocol error from server: \(reason)"))
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(CallStatus(code: .unavailable, message: "connection closed"))
        if let session {
            nghttp2_session_del(session)
            self.session = nil
        }
        for promise in closePromises { promise.succeed() }
        closePromises = []
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(CallStatus(code: .unavailable, message: "connection failed: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ status: CallStatus) {
        if refusal == nil { refusal = status }
        let open = calls
        calls = [:]
        for call in open.values { call.closed(status: status) }
    }

    // MARK: - Calls

    /// Submits the request headers (and whatever the call has queued to send).
    func open(_ call: ClientCall, headers: ClientHeaderBlock) {
        if let refusal {
            call.closed(status: refusal)
            return
        }
        guard let session else {
            call.closed(status: CallStatus(code: .unavailable, message: "not connected"))
            return
        }
        var provider = nghttp2_data_provider()
        provider.read_callback = clientCallDataRead
        let streamID = headers.withNameValues { nva, count in
            nghttp2_submit_request(session, nil, nva, count, &provider, Unmanaged.passUnretained(call).toOpaque())
        }
        guard streamID > 0 else {
            call.closed(status: CallStatus(code: .unavailable, message: "cannot open a stream: \(String(cString: nghttp2_strerror(streamID)))"))
            return
        }
        call.streamID = streamID
        calls[streamID] = call
        scheduleFlush()
    }

    func call(_ streamID: Int32) -> ClientCall? { calls[streamID] }

    /// nghttp2 closed the stream: the call is over.
    func streamClosed(id: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: id) else { return }
        call.streamClosed(errorCode: errorCode)
    }

    func resumeSending(_ call: ClientCall) {
        guard let session, call.streamID > 0 else { return }
        nghttp2_session_resume_data(session, call.streamID)
        scheduleFlush()
    }

    func reset(_ call: ClientCall, errorCode: UInt32) {
        guard let session, call.streamID > 0 else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), call.streamID, errorCode)
        scheduleFlush()
    }

    /// Window credit for bytes the caller has read.
    func consumed(_ call: ClientCall, bytes: Int) {
        guard let session, call.streamID > 0, bytes > 0 else { return }
        nghttp2_session_consume(session, call.streamID, bytes)
        scheduleFlush()
    }

    func goAwayReceived(lastStreamID: Int32, errorCode: UInt32) {
        if refusal == nil {
            refusal = CallStatus(code: .unavailable, message: "server is going away (GOAWAY, error code \(errorCode))")
        }
    }

    func close() -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        guard let context, context.channel.isActive else {
            promise.succeed()
            return promise.futureResult
        }
        closePromises.append(promise)
        if let session {
            nghttp2_session_terminate_session(session, NGHTTP2_NO_ERROR.rawValue)
            flush()
        }
        context.close(promise: nil)
        return promise.futureResult
    }

    // MARK: - Output

    func scheduleFlush() {
        guard !inReadCycle, !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute { [self] in
            flushScheduled = false
            flush()
        }
    }

    private func flush() {
        guard let session, let context else { return }
        var wrote = false
        while context.channel.isWritable || !wrote {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(session, &data)
            if length < 0 {
                failAll(CallStatus(code: .internalError, message: "HTTP/2 send error: \(String(cString: nghttp2_strerror(Int32(length))))"))
                context.close(promise: nil)
                return
            }
            guard length > 0, let data else { break }
            var buffer = context.channel.allocator.buffer(capacity: length)
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
            context.write(wrapOutboundOut(buffer), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
    }
}
