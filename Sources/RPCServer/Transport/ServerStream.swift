internal import CNGHTTP2
import Codec
import NIOCore
import Storage  // Duration in whole units, saturating

/// One gRPC call on one HTTP/2 stream: the request as it arrives, the handler's task, and the
/// response waiting for nghttp2 to pull it.
///
/// Flow control is end to end: request bytes are returned to the client as window credit only
/// when the handler takes the message that holds them (bytes of a message still being
/// reassembled are credited at once, so a message larger than the window cannot deadlock).
///
/// Which side of the call has ended is `machine`'s alone: the stream keeps the I/O (buffers,
/// continuations, nghttp2 calls) and does what the machine answers to each event.
final class ServerStream: RPCCall, @unchecked Sendable {  // confined to the connection's event loop
    let id: Int32
    let connection: ServerConnection
    /// This stream's index in its connection's list of open streams.
    var slot = 0
    var request = RequestHead()
    private(set) var method: RPCMethod?
    private var openedContext: ServerContext?
    var context: ServerContext { openedContext! }
    /// The handler's task while it runs (nil once it returned).
    var task: Task<Void, Never>?
    private var machine = ServerStreamStateMachine()
    /// When the deadline passes, the connection's timer finishes the call with DEADLINE_EXCEEDED.
    private(set) var deadline: NIODeadline?

    // Request side.
    private var deframer: MessageDeframer
    private var inbound = InboundMessages()
    /// Why the request failed, once the machine says it did.
    private var requestError: RPCError?
    /// Unsafe rather than checked continuations: `CheckedContinuation` is a resilient type, so
    /// every stream's init and deinit went through runtime metadata and value witnesses for
    /// these two optionals. Each is resumed once, after being taken out of its property.
    private var receiver: UnsafeContinuation<ByteBuffer?, any Error>?
    private var receivedBytes = 0
    /// Whether the request message the handler took last arrived compressed.
    private(set) var lastRequestCompressed = false
    /// For the call's metrics: where they go (nil: not a gRPC call yet, or metrics off), when
    /// the request's headers arrived, and the compressed bytes of the messages received and sent.
    var callMetrics: CallMetrics?
    /// The call's trace (its handler runs in it; its failure is logged with it).
    var trace: CallTrace?
    var startedAt = NIODeadline.uptimeNanoseconds(0)
    private(set) var receivedMessageBytes = 0
    private(set) var sentMessageBytes = 0
    private var consumedBytes = 0
    private var heldBytes = 0

    // Response side.
    /// The encoding the response headers announce (`grpc-encoding`), nil for identity.
    private var responseEncoding: MessageEncoding?
    /// Whether the next response messages are compressed (with `responseEncoding`).
    private var compressResponses = false
    private var outbound: ByteBuffer
    private var initialMetadata = Metadata()
    private var trailingMetadata = Metadata()
    /// The trailers the machine queued, until nghttp2 has pulled the last message.
    private var queuedTrailers: HeaderBlock?
    private var writer: UnsafeContinuation<Void, any Error>?

    init(id: Int32, connection: ServerConnection) {
        self.id = id
        self.connection = connection
        // Placeholders until `open`: shared, so a stream that is never opened allocates nothing.
        self.deframer = Self.unopenedDeframer
        self.outbound = Self.emptyBuffer
    }

    private var session: OpaquePointer? { connection.session }

    private static let unopenedDeframer = MessageDeframer(maxMessageSize: 0, encoding: nil)
    /// Writing to it copies on write, so the first response byte allocates the real buffer.
    private static let emptyBuffer = ByteBufferAllocator().buffer(capacity: 0)
    private static let initialOutboundCapacity = 256

    // MARK: - Request

    /// Called once the request headers are complete and valid: prepares the call.
    func open(method: RPCMethod, encoding: MessageEncoding?, responseEncoding: MessageEncoding?, timeout: Duration?) {
        guard machine.routed(singleRequest: method.kind.hasSingleRequest) == .open else { return }
        self.method = method
        self.deframer = MessageDeframer(
            maxMessageSize: connection.configuration.maxReceiveMessageSize, encoding: encoding,
            allocator: connection.allocator)
        self.responseEncoding = responseEncoding
        self.compressResponses = responseEncoding != nil
        let timeout = timeout ?? connection.configuration.defaultDeadline(for: method.kind)
        var instant: ContinuousClock.Instant?
        if let timeout {
            instant = .now + timeout
            // Counted from the read that delivered the headers: one clock read less per call.
            deadline = connection.lastReadAt + .nanoseconds(timeout.nanoseconds)
        }
        openedContext = ServerContext(
            path: request.path, metadata: request.metadata, deadline: instant, peer: connection.peer, call: self)
    }

    /// Whether the handler starts now (streaming calls at once, single-request calls when the
    /// whole request is in); the caller starts it.
    func startHandler() -> Bool {
        machine.startHandler()
    }

    var isHandlerRunning: Bool { machine.isHandlerRunning }

    /// Whether the call has its status or its stream is gone.
    var finished: Bool { machine.isFinished }

    /// The handler's body returned (its task is done).
    func handlerReturned() {
        task = nil
        let action = machine.handlerReturned()
        if action != .none { end(action, error: RPCError(.internalError, "the handler returned without a status")) }
    }

    /// Request DATA as it arrives from nghttp2.
    func receiveData(_ bytes: UnsafeRawBufferPointer) {
        receivedBytes += bytes.count
        switch machine.dataReceived() {
        case .deframe:
            break
        case .discard:
            returnCredit()
            return
        case .reset(let code):
            if let session { nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue) }
            connection.scheduleFlush()
            returnCredit()
            return
        }
        deframer.append(bytes)
        do {
            while true {
                let before = deframer.bufferedBytes
                guard let payload = try deframer.next() else { break }
                let wireBytes = before - deframer.bufferedBytes
                receivedMessageBytes += wireBytes - 5
                inbound.append(.init(payload: payload, wireBytes: wireBytes, compressed: deframer.lastMessageCompressed))
                heldBytes += wireBytes
            }
        } catch {
            failInput(error)
            return
        }
        returnCredit()
        wakeReceiver()
    }

    /// The client half-closed the stream (END_STREAM on HEADERS, DATA or trailers).
    func endOfInput() {
        if deframer.hasPartialMessage {
            failInput(RPCError(.internalError, "grpc: request stream ended in the middle of a message"))
        } else if machine.requestEnded() == .wakeReceiver {
            wakeReceiver()
        }
    }

    private func failInput(_ error: RPCError) {
        let action = machine.requestMalformed()
        if action == .none { return }
        requestError = error
        inbound.removeAll()
        heldBytes = 0
        returnCredit()
        if action == .sendTrailersOnly {
            end(.sendTrailersOnly(cancelHandler: false), error: error)
        } else {
            wakeReceiver()
        }
    }

    /// Returns the credit of every received byte no buffered message holds; once the stream
    /// is closed, only the connection's window is left to credit.
    private func returnCredit() {
        let target = receivedBytes - heldBytes
        guard target > consumedBytes, let session else { return }
        if machine.isClosed {
            nghttp2_session_consume_connection(session, target - consumedBytes)
        } else {
            nghttp2_session_consume(session, id, target - consumedBytes)
        }
        consumedBytes = target
    }

    private func wakeReceiver() {
        guard let receiver, hasInput else { return }
        self.receiver = nil
        do {
            receiver.resume(returning: try takeMessage())
        } catch {
            receiver.resume(throwing: error)
        }
    }

    /// A buffered message, nil at the clean end of input; throws on a broken request.
    /// Only called when a message is buffered or input has ended.
    private func takeMessage() throws -> ByteBuffer? {
        if let message = inbound.removeFirst() {
            lastRequestCompressed = message.compressed
            heldBytes -= message.wireBytes
            returnCredit()
            return message.payload
        }
        switch machine.onReceive {
        case .wait, .endOfRequest: return nil
        case .requestFailed: throw requestError ?? RPCError(.internalError, "grpc: malformed request")
        case .cancelled: throw CancellationError()
        }
    }

    private var hasInput: Bool {
        !inbound.isEmpty || machine.onReceive != .wait
    }

    func receive() async throws -> ByteBuffer? {
        if hasInput { return try takeMessage() }
        let loop = connection.eventLoop
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                if hasInput {
                    continuation.resume(with: Result { try takeMessage() })
                } else {
                    receiver = continuation
                }
            }
        } onCancel: {
            loop.execute {
                guard let receiver = self.receiver else { return }
                self.receiver = nil
                receiver.resume(throwing: CancellationError())
            }
        }
    }

    // MARK: - Response

    func setInitialMetadata(_ metadata: Metadata) {
        guard machine.acceptsInitialMetadata else { return }
        initialMetadata = metadata
    }

    func setResponseCompression(_ enabled: Bool) {
        // The encoding goes in the response headers: it can be chosen only before they are
        // sent, and only one the client accepts. Once announced, each message may still be
        // sent plain (its flag byte says which).
        if enabled && responseEncoding == nil && machine.acceptsInitialMetadata,
            let accepted = request.acceptEncoding, MessageEncoding.preferred(fromAcceptHeader: accepted) == .gzip
        {
            responseEncoding = .gzip
        }
        compressResponses = enabled && responseEncoding != nil
    }

    func send(_ message: some ProtobufMessage) async throws {
        guard machine.acceptsResponseMessages else { throw RPCError(.cancelled, "the call has ended") }
        try appendMessage(message)
        connection.scheduleFlush()
        if outbound.readableBytes > connection.configuration.streamOutputHighWater {
            try await withUnsafeThrowingContinuation { continuation in
                writer = continuation
            }
        }
    }

    func finish(with message: some ProtobufMessage) {
        guard machine.acceptsResponseMessages else { return }
        do {
            try appendMessage(message)
            finish(error: nil)
        } catch {
            finish(error: error)
        }
    }

    func addTrailingMetadata(_ metadata: Metadata) {
        trailingMetadata.append(contentsOf: metadata)
    }

    func singleRequest() throws -> ByteBuffer {
        guard let payload = try takeMessage() else {
            throw RPCError(.internalError, "grpc: client sent no request message for a unary request")
        }
        guard inbound.isEmpty else {
            throw RPCError(.internalError, "grpc: client sent more than one request message for a unary request")
        }
        return payload
    }

    private func appendMessage(_ message: some ProtobufMessage) throws(RPCError) {
        if outbound.capacity == 0 {
            // Sized for a typical message, so framing one does not grow the buffer twice.
            outbound = connection.allocator.buffer(capacity: Self.initialOutboundCapacity)
        }
        let before = outbound.readableBytes
        MessageFramer.frame(message, into: &outbound, compression: compressResponses ? responseEncoding : nil)
        let size = outbound.readableBytes - before - 5
        if size > connection.configuration.maxSendMessageSize {
            outbound.moveWriterIndex(to: outbound.writerIndex - size - 5)
            throw RPCError(
                .resourceExhausted,
                "grpc: trying to send message larger than max (\(size) vs. \(connection.configuration.maxSendMessageSize))")
        }
        sentMessageBytes += size
        connection.noteResponseActivity()
        switch machine.messageQueued() {
        case .startResponse: startResponse()
        case .resumeResponse: if let session { nghttp2_session_resume_data(session, id) }
        case .none: break
        }
    }

    /// Submits the response headers with a data provider that pulls from `outbound`.
    private func startResponse() {
        guard let session else { return }
        var provider = nghttp2_data_provider()
        provider.read_callback = serverStreamDataRead
        if initialMetadata.isEmpty && responseEncoding == nil {
            ResponseHeaders.ok.withNameValues { nva, count in
                _ = nghttp2_submit_response(session, id, nva, count, &provider)
            }
        } else {
            var headers = ResponseHeaders.okBlock(encoding: responseEncoding)
            for (name, value) in initialMetadata.wireHeaders { headers.add(name, value) }
            headers.withNameValues { nva, count in
                _ = nghttp2_submit_response(session, id, nva, count, &provider)
            }
        }
    }

    func finish(error: (any Error)?) {
        end(machine.finish(), error: error)
    }

    func end(from elsewhere: (any Error)?) {
        connection.eventLoop.execute { self.finish(error: elsewhere) }
    }

    /// Sends the status the way the machine said, then cancels the handler if it said so.
    private func end(_ action: ServerStreamStateMachine.OnEnd, error: (any Error)?) {
        let trailersOnly: Bool
        let cancelHandler: Bool
        switch action {
        case .none: return
        case .sendTrailersOnly(let cancel): (trailersOnly, cancelHandler) = (true, cancel)
        case .queueTrailers(let cancel): (trailersOnly, cancelHandler) = (false, cancel)
        }
        let status = error.map(connection.status(for:)) ?? RPCError(.ok, "")
        connection.callFinished(self, status: status)
        if let session { submit(status, trailersOnly: trailersOnly, session: session) }
        if cancelHandler {
            task?.cancel()
            // Cancelling the task does not resume a handler waiting in `send` for a client
            // that does not read (the trailers may wait behind its data as long): end it here.
            wakeWriter()
        }
    }

    /// Ends a `send` waiting for output room: the call is over.
    private func wakeWriter() {
        guard let writer else { return }
        self.writer = nil
        writer.resume(throwing: RPCError(.cancelled, "the call has ended"))
    }

    private func submit(_ status: RPCError, trailersOnly: Bool, session: OpaquePointer) {
        let trailers = trailingMetadata
        if trailersOnly {
            // Trailers-Only: a single HEADERS frame with END_STREAM carries the status.
            var block = ResponseHeaders.okBlock(encoding: nil)
            for (name, value) in initialMetadata.wireHeaders { block.add(name, value) }
            Self.appendStatus(status, trailers: trailers, to: &block)
            block.withNameValues { nva, count in _ = nghttp2_submit_response(session, id, nva, count, nil) }
        } else if status.code == .ok && status.metadata.isEmpty && trailers.isEmpty {
            queuedTrailers = ResponseHeaders.okTrailers
            nghttp2_session_resume_data(session, id)
        } else {
            var block = HeaderBlock()
            Self.appendStatus(status, trailers: trailers, to: &block)
            queuedTrailers = block
            nghttp2_session_resume_data(session, id)
        }
        connection.scheduleFlush()
    }

    private static func appendStatus(_ status: RPCError, trailers: Metadata, to block: inout HeaderBlock) {
        block.add("grpc-status", status.code.headerValue)
        if !status.message.isEmpty { block.add("grpc-message", GRPCMessageEncoding.encode(status.message)) }
        for (name, value) in status.metadata.wireHeaders { block.add(name, value) }
        for (name, value) in trailers.wireHeaders { block.add(name, value) }
    }

    /// nghttp2 pulls response bytes: copy what is buffered; at the end, trailers.
    func readResponse(into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let count = min(length, outbound.readableBytes)
        if count > 0 {
            outbound.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress!, byteCount: count)
            }
            outbound.moveReaderIndex(forwardBy: count)
            if outbound.readableBytes == 0 { outbound.clear() }
            if let writer, outbound.readableBytes <= connection.configuration.streamOutputHighWater / 2 {
                self.writer = nil
                writer.resume()
            }
        }
        if outbound.readableBytes == 0, let session, machine.responseDrained() == .sendTrailers,
            let trailers = queuedTrailers
        {
            queuedTrailers = nil
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) | UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
            trailers.withNameValues { nva, count in _ = nghttp2_submit_trailer(session, id, nva, count) }
            return count
        }
        return count == 0 ? Int(NGHTTP2_ERR_DEFERRED.rawValue) : count
    }

    // MARK: - Termination

    /// Answers a request that is not gRPC at all (wrong method or content-type) with a plain
    /// HTTP status, as the gRPC spec asks, plus a grpc-status for clients that look for one.
    func rejectHTTP(status httpStatus: Int, message: String) {
        guard let session, machine.rejected() == .sendRejection else { return }
        connection.callFinished(self, status: RPCError(.internalError, message))
        let block = HeaderBlock([
            (":status", String(httpStatus)),
            ("content-type", "application/grpc"),
            ("grpc-status", StatusCode.internalError.headerValue),
            ("grpc-message", GRPCMessageEncoding.encode(message)),
        ])
        block.withNameValues { nva, count in _ = nghttp2_submit_response(session, id, nva, count, nil) }
        connection.scheduleFlush()
    }

    /// The deadline passed before the handler finished.
    func deadlineExceeded() {
        end(machine.deadlinePassed(), error: RPCError(.deadlineExceeded, "deadline exceeded"))
    }

    /// The connection's graceful shutdown ran out of time before the handler finished.
    func shutdownGraceExpired() {
        end(machine.shutdownGraceExpired(), error: RPCError(.unavailable, "server is shutting down"))
    }

    /// nghttp2 closed the stream (completed, reset by the client, or connection gone).
    func streamClosed() {
        guard case .close(let cancelled, let cancelHandler) = machine.streamClosed() else { return }
        if cancelled { connection.callFinished(self, status: RPCError(.cancelled, "cancelled by the client")) }
        if cancelHandler { task?.cancel() }
        if let receiver {
            self.receiver = nil
            receiver.resume(throwing: CancellationError())
        }
        wakeWriter()
        inbound.removeAll()
        heldBytes = 0
        returnCredit()
    }
}

/// nghttp2's pull callback for response DATA; the stream is the stream's user data.
func serverStreamDataRead(
    session: OpaquePointer?, streamID: Int32, buffer: UnsafeMutablePointer<UInt8>?, length: Int,
    flags: UnsafeMutablePointer<UInt32>?, source: UnsafeMutablePointer<nghttp2_data_source>?,
    userData: UnsafeMutableRawPointer?
) -> Int {
    guard let raw = nghttp2_session_get_stream_user_data(session, streamID), let buffer, let flags else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    let stream = Unmanaged<ServerStream>.fromOpaque(raw).takeUnretainedValue()
    return stream.readResponse(into: buffer, length: length, flags: flags)
}
