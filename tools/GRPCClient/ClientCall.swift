internal import CNGHTTP2
public import Codec
import NIOCore
import Synchronization

/// One gRPC call on one HTTP/2 stream: request messages go out through nghttp2's data
/// provider, response messages are deframed as DATA arrives and handed to the reader, and
/// the status comes from the trailers (or a reset, deadline, cancellation or lost connection).
///
/// Thread-safe: every public method may be called from any task. The call's state lives on
/// its connection's event loop; from a task running there (see `GRPCConnection.taskExecutor`)
/// sends and reads run inline, from elsewhere they hop to the loop once per operation.
/// Reading responses returns flow-control credit to the server, so a slow reader slows the
/// server down. A task cancelled while it awaits any of the call's methods cancels the call.
public final class ClientCall: @unchecked Sendable {  // mutable state is only touched on the connection's event loop
    let connection: ClientConnection
    let path: String
    let metadata: Metadata
    let timeout: Duration?
    let contentType: String
    let compression: Bool
    private let deadline: NIODeadline?
    private let httpStatusStorage = Atomic<Int>(0)
    /// Unary calls take their response credit back as bytes arrive (the single message is
    /// held until the call ends, and may be larger than the stream window).
    private let returnsCreditOnArrival: Bool

    // Loop-confined state.
    private var streamID: Int32 = 0
    private var streamClosed = false
    /// When the request's HEADERS frame was serialized for the socket (nil until then).
    private var requestSentAt: NIODeadline?

    // Request side.
    private var outbound: ByteBuffer
    private var sendClosed = false
    private var endOfRequestSent = false
    private var sendWaiters: [CheckedContinuation<Void, any Error>] = []

    // Response side.
    private var headersReceived = false
    private var remoteEnded = false
    private var deframer: MessageDeframer?
    private var inbound: [ByteBuffer] = []
    private var receivedBytes = 0
    private var consumedBytes = 0
    private var heldBytes = 0
    private var reader: CheckedContinuation<[ByteBuffer], any Error>?
    private var responseMetadata: Metadata?
    private var metadataWaiters: [CheckedContinuation<Metadata, any Error>] = []
    private var finalStatus: CallStatus?
    private var statusWaiters: [CheckedContinuation<CallStatus, Never>] = []
    /// A unary call's single consumer (the awaiting task, or `GRPCConnection.startUnary`'s
    /// callback), called once on the loop when the call ends.
    private var unaryCompletion: UnaryCompletion?
    private var deadlineTimer: Scheduled<Void>?

    /// Who takes a unary call's outcome. The callback is stored as given (no wrapping
    /// closure): `startUnary` costs no allocation beyond the call itself.
    enum UnaryCompletion: Sendable {
        case task(CheckedContinuation<UnaryOutcome, Never>)
        case callback(@Sendable (RawUnaryResult) -> Void)

        func deliver(_ outcome: UnaryOutcome) {
            switch self {
            case .task(let continuation): continuation.resume(returning: outcome)
            case .callback(let completion): completion(RawUnaryResult(outcome))
            }
        }
    }

    /// A unary call's result, handed from the loop to the awaiting task in one piece.
    struct UnaryOutcome: Sendable {
        var status: CallStatus
        var initialMetadata: Metadata?
        var messages: [ByteBuffer]
        var requestSentAt: NIODeadline?
    }

    init(
        connection: ClientConnection, path: String, metadata: Metadata, timeout: Duration?, contentType: String,
        compression: Bool, request: ByteBuffer?, unary: Bool
    ) {
        self.connection = connection
        self.path = path
        self.metadata = metadata
        self.timeout = timeout
        self.contentType = contentType
        self.compression = compression
        self.deadline = timeout.map { NIODeadline.now() + .nanoseconds(Self.nanoseconds($0)) }
        self.returnsCreditOnArrival = unary
        if let request {
            self.outbound = request
            self.sendClosed = true
        } else {
            self.outbound = Self.emptyBuffer
        }
    }

    /// Writing to it copies on write, so a call's first message allocates its own buffer. A
    /// drained `outbound` is reset to it rather than cleared: the request bytes may be a buffer
    /// the caller shares between calls, and clearing a shared buffer allocates.
    private static let emptyBuffer = ByteBufferAllocator().buffer(capacity: 0)

    private var eventLoop: any EventLoop { connection.eventLoop }

    var hasEnded: Bool { finalStatus != nil }

    // MARK: - Public API

    /// The `:status` of the response headers once they arrived (e.g. 415 for a request the
    /// server does not take as gRPC), nil before.
    public var httpStatus: Int? {
        let value = httpStatusStorage.load(ordering: .acquiring)
        return value == 0 ? nil : value
    }

    /// Sends one message, gzip-compressed if the call was made with `compression: true`.
    /// Returns once the message is buffered below the send high-water mark: a sender
    /// faster than the server's flow-control credit waits here.
    ///
    /// Throws `CallError` with the call's status when the call has already ended.
    public func send<M: ProtobufMessage>(_ message: M) async throws {
        var buffer = connection.allocator.buffer(capacity: message.encodedSize + 5)
        MessageFramer.frame(message, into: &buffer, compression: compression ? .gzip : nil)
        try await enqueue(buffer, end: false)
    }

    /// Sends bytes as they are (`framed: true`: the caller wrote the 5-byte prefix, or a
    /// broken one on purpose) or framed as one message payload (gzip-compressed if the call
    /// compresses).
    public func sendRaw(_ framedOrPayload: [UInt8], framed: Bool = false) async throws {
        var buffer = connection.allocator.buffer(capacity: framedOrPayload.count + 5)
        if framed {
            buffer.writeBytes(framedOrPayload)
        } else {
            var payload = connection.allocator.buffer(capacity: framedOrPayload.count)
            payload.writeBytes(framedOrPayload)
            if compression { payload = Gzip.compress(payload) }
            MessageFramer.frame(payload: payload, compressed: compression, into: &buffer)
        }
        try await enqueue(buffer, end: false)
    }

    /// Half-closes the request (END_STREAM after the buffered messages). Does nothing when
    /// the call has already ended (the server may answer before reading the whole request);
    /// `status()` tells how it ended.
    public func finishSending() async throws {
        try await enqueue(nil, end: true)
    }

    /// Cancels the call: RST_STREAM(CANCEL) to the server, status CANCELLED locally.
    public func cancel() {
        onLoop { $0.fail(CallStatus(code: .cancelled, message: "cancelled by the client"), reset: NGHTTP2_CANCEL.rawValue) }
    }

    /// The response message payloads, in order. Ends when the call ends with OK; throws
    /// `CallError` after the last message when it ends otherwise.
    public var responses: ClientResponseStream { ClientResponseStream(call: self) }

    /// The response messages decoded as `M`; a payload that does not decode throws
    /// `CallError(INTERNAL)` and cancels the call.
    public func messages<M: ProtobufMessage>(_: M.Type) -> some AsyncSequence<M, any Error> {
        ClientMessageStream<M>(call: self)
    }

    /// The response headers' metadata (for a Trailers-Only response, that block's custom
    /// metadata). Throws `CallError` when the call ended without any response headers.
    public func initialMetadata() async throws -> Metadata {
        if eventLoop.inEventLoop, let result = metadataResult() { return try result.get() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                onLoop { call in
                    if let result = call.metadataResult() {
                        continuation.resume(with: result)
                    } else {
                        call.metadataWaiters.append(continuation)
                    }
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The call's final status, once it has one: from the trailers, or from a reset,
    /// deadline, cancellation or lost connection (mapped as gRPC specifies).
    public func status() async -> CallStatus {
        if eventLoop.inEventLoop, let finalStatus { return finalStatus }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                onLoop { call in
                    if let status = call.finalStatus {
                        continuation.resume(returning: status)
                    } else {
                        call.statusWaiters.append(continuation)
                    }
                }
            }
        } onCancel: {
            cancel()
        }
    }

    // MARK: - Loop plumbing

    /// Runs `body` on the loop: inline when already there.
    private func onLoop(_ body: @escaping @Sendable (ClientCall) -> Void) {
        if eventLoop.inEventLoop {
            body(self)
        } else {
            eventLoop.execute { body(self) }
        }
    }

    private func metadataResult() -> Result<Metadata, any Error>? {
        if let responseMetadata { return .success(responseMetadata) }
        if let finalStatus { return .failure(CallError(status: finalStatus)) }
        return nil
    }

    /// Called by `GRPCConnection.unary` and `startUnary` (on the loop) before the call is
    /// submitted; `completion` runs once, on the loop, when the call ends.
    func awaitUnary(_ completion: UnaryCompletion) {
        if let finalStatus {
            completion.deliver(
                UnaryOutcome(status: finalStatus, initialMetadata: responseMetadata, messages: inbound, requestSentAt: requestSentAt))
        } else {
            unaryCompletion = completion
        }
    }

    // MARK: - Sending (loop side)

    private enum AppendResult {
        case accepted
        case mustWait
        case failed(CallError)
    }

    private func enqueue(_ bytes: ByteBuffer?, end: Bool) async throws {
        if eventLoop.inEventLoop {
            switch append(bytes, end: end) {
            case .accepted: return
            case .failed(let error): throw error
            case .mustWait: break
            }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    onLoop { call in call.waitForSendCredit(continuation) }
                }
            } onCancel: {
                cancel()
            }
            return
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                eventLoop.execute {
                    switch self.append(bytes, end: end) {
                    case .accepted: continuation.resume()
                    case .failed(let error): continuation.resume(throwing: error)
                    case .mustWait: self.waitForSendCredit(continuation)
                    }
                }
            }
        } onCancel: {
            cancel()
        }
    }

    private func waitForSendCredit(_ continuation: CheckedContinuation<Void, any Error>) {
        if let finalStatus {
            continuation.resume(throwing: CallError(status: finalStatus, initialMetadata: responseMetadata ?? Metadata()))
        } else if outbound.readableBytes <= connection.configuration.sendBufferHighWater {
            continuation.resume()
        } else {
            sendWaiters.append(continuation)
        }
    }

    private func append(_ bytes: ByteBuffer?, end: Bool) -> AppendResult {
        if let finalStatus {
            if bytes == nil { return .accepted }  // finishing an ended call is harmless
            return .failed(CallError(status: finalStatus, initialMetadata: responseMetadata ?? Metadata()))
        }
        if sendClosed {
            if bytes == nil { return .accepted }
            return .failed(CallError(.failedPrecondition, "the request stream is already finished (finishSending was called)"))
        }
        if let bytes {
            if outbound.readableBytes == 0 {
                outbound = bytes
            } else {
                outbound.writeImmutableBuffer(bytes)
            }
        }
        if end { sendClosed = true }
        if streamID > 0, !streamClosed, let session = connection.session {
            nghttp2_session_resume_data(session, streamID)
            connection.scheduleFlush()
        }
        return outbound.readableBytes > connection.configuration.sendBufferHighWater ? .mustWait : .accepted
    }

    /// nghttp2 pulls request bytes: copy what is buffered; END_STREAM once finished.
    func readRequest(into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        if finalStatus != nil && !remoteEnded {
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)  // being reset; send nothing more
        }
        let count = min(length, outbound.readableBytes)
        if count > 0 {
            outbound.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress!, byteCount: count)
            }
            outbound.moveReaderIndex(forwardBy: count)
            if outbound.readableBytes == 0 { outbound = Self.emptyBuffer }
            if !sendWaiters.isEmpty, outbound.readableBytes <= connection.configuration.sendBufferHighWater / 2 {
                let waiters = sendWaiters
                sendWaiters.removeAll()
                for waiter in waiters { waiter.resume() }
            }
        }
        if outbound.readableBytes == 0 && sendClosed {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            endOfRequestSent = true
            return count
        }
        return count == 0 ? Int(NGHTTP2_ERR_DEFERRED.rawValue) : count
    }

    // MARK: - Lifecycle (loop side)

    /// The request was handed to nghttp2 as `streamID`; arms the deadline.
    func requestHeadersSent() {
        if requestSentAt == nil { requestSentAt = .now() }
    }

    func submitted(streamID: Int32) {
        self.streamID = streamID
        guard let deadline else { return }
        if deadline <= .now() {
            deadlineExpired()
        } else {
            deadlineTimer = eventLoop.scheduleTask(deadline: deadline) { self.deadlineExpired() }
        }
    }

    private func deadlineExpired() {
        deadlineTimer = nil
        let shown = timeout.map { " (timeout \($0))" } ?? ""
        fail(CallStatus(code: .deadlineExceeded, message: "deadline exceeded\(shown)"), reset: NGHTTP2_CANCEL.rawValue)
    }

    /// Ends the call locally and resets its stream if it is still open.
    private func fail(_ status: CallStatus, reset errorCode: UInt32) {
        guard finalStatus == nil else { return }
        finish(status)
        if streamID > 0, !streamClosed {
            connection.reset(streamID: streamID, errorCode: errorCode)
        }
    }

    /// Records the final status and wakes everyone waiting on the call.
    func finish(_ status: CallStatus) {
        guard finalStatus == nil else { return }
        finalStatus = status
        deadlineTimer?.cancel()
        deadlineTimer = nil
        if remoteEnded, streamID > 0, !streamClosed, !endOfRequestSent {
            // The server answered before reading the whole request: stop sending it.
            connection.reset(streamID: streamID, errorCode: NGHTTP2_NO_ERROR.rawValue)
        }
        outbound = Self.emptyBuffer
        if !sendWaiters.isEmpty {
            let error = CallError(status: status, initialMetadata: responseMetadata ?? Metadata())
            let waiters = sendWaiters
            sendWaiters.removeAll()
            for waiter in waiters { waiter.resume(throwing: error) }
        }
        if !metadataWaiters.isEmpty {
            let waiters = metadataWaiters
            metadataWaiters.removeAll()
            for waiter in waiters {
                if let responseMetadata {
                    waiter.resume(returning: responseMetadata)
                } else {
                    waiter.resume(throwing: CallError(status: status))
                }
            }
        }
        if !statusWaiters.isEmpty {
            let waiters = statusWaiters
            statusWaiters.removeAll()
            for waiter in waiters { waiter.resume(returning: status) }
        }
        if let unaryCompletion {
            self.unaryCompletion = nil
            let messages = inbound
            inbound.removeAll()
            unaryCompletion.deliver(
                UnaryOutcome(status: status, initialMetadata: responseMetadata, messages: messages, requestSentAt: requestSentAt))
        }
        wakeReader()
    }

    /// nghttp2 closed the stream; `status` is set when the call had not ended yet.
    func streamClosed(status: CallStatus?) {
        streamClosed = true
        if let status { finish(status) }
        // Stream-level credit dies with the stream; connection-level credit must come back.
        if let session = connection.session, receivedBytes > consumedBytes {
            nghttp2_session_consume_connection(session, receivedBytes - consumedBytes)
            consumedBytes = receivedBytes
        }
    }

    /// The connection is gone (nghttp2's session is being deleted).
    func connectionClosed(_ status: CallStatus) {
        streamClosed = true
        finish(status)
    }

    // MARK: - Receiving (loop side, from nghttp2's callbacks)

    /// A header block of this stream arrived whole (parsed by the connection, see
    /// `ClientConnection.responseHead`).
    func headerBlockComplete(_ head: ResponseHead, endStream: Bool) {
        if endStream { remoteEnded = true }
        guard finalStatus == nil else { return }
        if headersReceived {
            // Trailers.
            if let deframer, deframer.hasPartialMessage {
                fail(
                    CallStatus(
                        code: .internalError,
                        message: "the response ended in the middle of a message (\(deframer.bufferedBytes) bytes buffered)",
                        trailers: head.metadata), reset: NGHTTP2_CANCEL.rawValue)
                return
            }
            finish(head.callStatus)
            return
        }
        guard let httpStatus = head.httpStatus else {
            fail(CallStatus(code: .internalError, message: "response headers without :status"), reset: NGHTTP2_PROTOCOL_ERROR.rawValue)
            return
        }
        if (100..<200).contains(httpStatus) && !endStream { return }  // informational; the real headers follow
        httpStatusStorage.store(httpStatus, ordering: .releasing)
        headersReceived = true
        guard httpStatus == 200 else {
            var message = "HTTP status \(httpStatus)"
            if let grpcMessage = head.grpcMessage, !grpcMessage.isEmpty { message += ": \(grpcMessage)" }
            fail(CallStatus(code: StatusMapping.code(httpStatus: httpStatus), message: message), reset: NGHTTP2_CANCEL.rawValue)
            return
        }
        guard head.isGRPCContentType else {
            fail(
                CallStatus(code: .unknown, message: "invalid response content-type \"\(head.contentType ?? "")\""),
                reset: NGHTTP2_CANCEL.rawValue)
            return
        }
        guard !head.invalidMetadata else {
            fail(CallStatus(code: .internalError, message: "invalid base64 in -bin response metadata"), reset: NGHTTP2_CANCEL.rawValue)
            return
        }
        responseMetadata = head.metadata
        if !metadataWaiters.isEmpty {
            let waiters = metadataWaiters
            metadataWaiters.removeAll()
            for waiter in waiters { waiter.resume(returning: head.metadata) }
        }
        if endStream {
            finish(head.callStatus)  // Trailers-Only
            return
        }
        var encoding: MessageEncoding?
        if let name = head.encoding {
            guard let known = MessageEncoding(rawValue: name) else {
                fail(
                    CallStatus(code: .internalError, message: "response uses unsupported grpc-encoding \"\(name)\""),
                    reset: NGHTTP2_CANCEL.rawValue)
                return
            }
            encoding = known
        }
        deframer = MessageDeframer(
            maxMessageSize: connection.configuration.maxReceiveMessageSize, encoding: encoding, allocator: connection.allocator)
    }

    func dataEndedStream() {
        remoteEnded = true
        guard finalStatus == nil else { return }
        fail(CallStatus(code: .internalError, message: "the server ended the stream without trailers"), reset: NGHTTP2_CANCEL.rawValue)
    }

    func receiveData(_ bytes: UnsafeRawBufferPointer) {
        receivedBytes += bytes.count
        guard finalStatus == nil, deframer != nil else {
            if finalStatus == nil {
                fail(CallStatus(code: .internalError, message: "response DATA before headers"), reset: NGHTTP2_PROTOCOL_ERROR.rawValue)
            }
            returnCredit()
            return
        }
        deframer!.append(bytes)
        do {
            while true {
                let before = deframer!.bufferedBytes
                guard let payload = try deframer!.next() else { break }
                inbound.append(payload)
                if !returnsCreditOnArrival { heldBytes += before - deframer!.bufferedBytes }
            }
        } catch {
            returnCredit()
            fail(CallStatus(code: error.code, message: error.message), reset: NGHTTP2_CANCEL.rawValue)
            return
        }
        returnCredit()
        wakeReader()
    }

    /// Returns window credit for every received byte that is not part of a message the
    /// reader still holds (partial messages are credited at once: a message larger than the
    /// window must still get through).
    private func returnCredit() {
        let target = receivedBytes - heldBytes
        guard target > consumedBytes, !streamClosed, let session = connection.session else { return }
        nghttp2_session_consume(session, streamID, target - consumedBytes)
        consumedBytes = target
        connection.scheduleFlush()
    }

    // MARK: - Reading (loop side)

    /// Hands every buffered message to the reader: an empty batch is the clean end.
    private func takeBatch() -> Result<[ByteBuffer], any Error>? {
        if !inbound.isEmpty {
            let batch = inbound
            inbound.removeAll(keepingCapacity: true)
            heldBytes = 0
            returnCredit()
            return .success(batch)
        }
        guard let finalStatus else { return nil }
        if finalStatus.code == .ok { return .success([]) }
        return .failure(CallError(status: finalStatus, initialMetadata: responseMetadata ?? Metadata()))
    }

    private func wakeReader() {
        guard let reader, let batch = takeBatch() else { return }
        self.reader = nil
        reader.resume(with: batch)
    }

    /// The next batch of response payloads; empty at the clean end of the responses.
    func nextBatch() async throws -> [ByteBuffer] {
        if eventLoop.inEventLoop, let batch = takeBatch() { return try batch.get() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                onLoop { call in
                    if let batch = call.takeBatch() {
                        continuation.resume(with: batch)
                    } else if call.reader != nil {
                        continuation.resume(throwing: CallError(.failedPrecondition, "responses are already being read by another task"))
                    } else {
                        call.reader = continuation
                    }
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// A response payload the reader could not decode: the call fails INTERNAL.
    func failDecoding(_ error: ProtobufError) {
        onLoop {
            $0.fail(
                CallStatus(code: .internalError, message: "failed to decode the response: \(error.description)"),
                reset: NGHTTP2_CANCEL.rawValue)
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.nanoseconds
    }
}
