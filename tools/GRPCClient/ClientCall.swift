internal import CNGHTTP2
public import Codec
public import NIOCore

/// One gRPC call on one HTTP/2 stream, from the client's side.
///
/// Its state lives on the connection's event loop; the public methods hop there. Requests are
/// queued and pulled by nghttp2 as flow control allows (`send` waits while too much is queued);
/// responses are deframed as DATA arrives and window credit is returned as they are read, up
/// to a small buffer, so a slow reader slows the server down instead of growing memory.
public final class ClientCall: @unchecked Sendable {  // state confined to the connection's event loop
    let handler: ClientConnectionHandler
    let path: String
    var streamID: Int32 = 0
    private var eventLoop: any EventLoop { handler.eventLoop }

    // Request side.
    private var outbound: ByteBuffer
    private var sendFinished: Bool
    private var sendWaiters: [CheckedContinuation<Void, any Error>] = []
    static let sendHighWater = 256 * 1024

    // Response side.
    private var deframer: MessageDeframer?
    private var inbound: [ByteBuffer] = []
    private var inboundHead = 0
    private var receiver: CheckedContinuation<ByteBuffer?, any Error>?
    /// Bytes received but not yet credited back, held while the reader is behind.
    private var owedCredit = 0
    static let bufferedMessagesBeforeBackpressure = 64

    // Headers and status.
    public private(set) var httpStatus: Int?
    private var contentType: String?
    private var responseEncoding: MessageEncoding?
    private var initial = Metadata()
    private var trailing = Metadata()
    private var grpcStatus: StatusCode?
    private var grpcMessage = ""
    private var headersDone = false
    private var headerWaiters: [CheckedContinuation<Metadata, Never>] = []
    private var localStatus: CallStatus?
    private var finalStatus: CallStatus?
    private var statusWaiters: [CheckedContinuation<CallStatus, Never>] = []
    private var deadlineTimer: Scheduled<Void>?
    private(set) var bytesSent = 0
    private(set) var bytesReceived = 0

    /// A request sent whole (unary, server-streaming) is kept so a stream the server refused
    /// before processing it (REFUSED_STREAM, e.g. sent before its SETTINGS arrived) can be
    /// opened again transparently, as gRPC allows.
    private let retainedRequest: ByteBuffer?
    private var transparentRetries = 0
    static let maxTransparentRetries = 5
    var headers: ClientHeaderBlock

    init(handler: ClientConnectionHandler, path: String, headers: ClientHeaderBlock, firstRequest: ByteBuffer?, finished: Bool) {
        self.handler = handler
        self.path = path
        self.headers = headers
        self.outbound = firstRequest ?? ByteBuffer()
        self.sendFinished = finished
        self.retainedRequest = finished ? firstRequest : nil
    }

    // MARK: - Public API

    /// Queues one message; waits while more than `sendHighWater` bytes are queued.
    public func send<M: ProtobufMessage>(_ message: M, compression: MessageEncoding? = nil) async throws {
        var framed = ByteBuffer()
        MessageFramer.frame(message, into: &framed, compression: compression)
        try await enqueue(framed)
    }

    /// Queues bytes as they are: `framed` true sends them without a prefix (tests of malformed
    /// framing), false frames them as one uncompressed message.
    public func sendRaw(_ bytes: [UInt8], framed: Bool = false) async throws {
        var buffer = ByteBuffer()
        if framed {
            buffer.writeBytes(bytes)
        } else {
            MessageFramer.frame(payload: ByteBuffer(bytes: bytes), compressed: false, into: &buffer)
        }
        try await enqueue(buffer)
    }

    /// Ends the request side (END_STREAM once the queue is sent).
    public func finishSending() async throws {
        try await onLoop { (continuation: CheckedContinuation<Void, any Error>) in
            if !self.sendFinished {
                self.sendFinished = true
                self.handler.resumeSending(self)
            }
            continuation.resume()
        }
    }

    /// Cancels the call (RST_STREAM CANCEL); its status becomes CANCELLED.
    public func cancel() {
        execute {
            guard self.finalStatus == nil else { return }
            if self.localStatus == nil {
                self.localStatus = CallStatus(code: .cancelled, message: "cancelled by the client")
            }
            if self.streamID > 0 {
                self.handler.reset(self, errorCode: NGHTTP2_CANCEL.rawValue)
            } else {
                self.finish()
            }
        }
    }

    /// Response message payloads, in order; ends at the end of the call (see `status()`).
    public var responses: ClientResponseStream { ClientResponseStream(call: self) }

    /// Response messages decoded as `M`.
    public func messages<M: ProtobufMessage>(_: M.Type) -> AsyncThrowingMapSequence<ClientResponseStream, M> {
        responses.map { try M(protobuf: $0) }
    }

    /// The response headers (from a Trailers-Only response: its metadata; empty if none came).
    public func initialMetadata() async -> Metadata {
        await withCheckedContinuation { (continuation: CheckedContinuation<Metadata, Never>) in
            execute {
                if self.headersDone || self.finalStatus != nil {
                    continuation.resume(returning: self.initial)
                } else {
                    self.headerWaiters.append(continuation)
                }
            }
        }
    }

    /// How the call ended; waits for the end.
    public func status() async -> CallStatus {
        await withCheckedContinuation { (continuation: CheckedContinuation<CallStatus, Never>) in
            execute {
                if let status = self.finalStatus {
                    continuation.resume(returning: status)
                } else {
                    self.statusWaiters.append(continuation)
                }
            }
        }
    }

    /// Every response message and the status, once the call has ended.
    func collect() async -> (messages: [ByteBuffer], status: CallStatus, initialMetadata: Metadata) {
        let status = await status()
        return await withCheckedContinuation { continuation in
            execute {
                let messages = Array(self.inbound[self.inboundHead...])
                self.inbound = []
                self.inboundHead = 0
                continuation.resume(returning: (messages, status, self.initial))
            }
        }
    }

    // MARK: - Loop-side plumbing

    private func execute(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { body() } else { eventLoop.execute(body) }
    }

    private func onLoop<T>(_ body: @escaping @Sendable (CheckedContinuation<T, any Error>) -> Void) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            execute { body(continuation) }
        }
    }

    private func enqueue(_ framed: ByteBuffer) async throws {
        try await onLoop { (continuation: CheckedContinuation<Void, any Error>) in
            if let status = self.finalStatus {
                continuation.resume(throwing: CallError(status: status, initialMetadata: self.initial))
                return
            }
            guard !self.sendFinished else {
                continuation.resume(throwing: CallError(status: CallStatus(code: .failedPrecondition, message: "the request side is already finished")))
                return
            }
            var framed = framed
            self.outbound.writeBuffer(&framed)
            self.handler.resumeSending(self)
            if self.outbound.readableBytes > Self.sendHighWater {
                self.sendWaiters.append(continuation)
            } else {
                continuation.resume()
            }
        }
    }

    func startDeadline(_ timeout: Duration) {
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        deadlineTimer = eventLoop.scheduleTask(in: .nanoseconds(max(0, nanoseconds))) { [self] in
            guard finalStatus == nil else { return }
            localStatus = CallStatus(code: .deadlineExceeded, message: "deadline exceeded (\(timeout))")
            if streamID > 0 { handler.reset(self, errorCode: NGHTTP2_CANCEL.rawValue) } else { finish() }
        }
    }

    /// nghttp2 asks for request bytes.
    func readRequest(into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let count = min(length, outbound.readableBytes)
        if count > 0 {
            outbound.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress!, byteCount: count)
            }
            outbound.moveReaderIndex(forwardBy: count)
            bytesSent += count
            if outbound.readableBytes == 0 { outbound.clear() }
        }
        if outbound.readableBytes == 0 && sendFinished {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
        }
        if outbound.readableBytes <= Self.sendHighWater, !sendWaiters.isEmpty {
            let waiters = sendWaiters
            sendWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        if count == 0 && !sendFinished { return Int(NGHTTP2_ERR_DEFERRED.rawValue) }
        return count
    }

    func header(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, trailers: Bool) {
        let name = String(decoding: name, as: UTF8.self)
        let value = String(decoding: value, as: UTF8.self)
        switch name {
        case ":status": httpStatus = Int(value)
        case "content-type": contentType = value
        case "grpc-status": grpcStatus = StatusCode(headerValue: value) ?? .unknown
        case "grpc-message": grpcMessage = GRPCMessageEncoding.decode(value)
        case "grpc-encoding": responseEncoding = MessageEncoding(rawValue: value)
        case "grpc-accept-encoding": break
        default:
            if trailers {
                _ = trailing.addWireHeader(name: name, value: value)
            } else {
                _ = initial.addWireHeader(name: name, value: value)
            }
        }
    }

    func headersComplete(endStream: Bool) {
        headersDone = true
        deframer = MessageDeframer(maxMessageSize: handler.configuration.maxReceiveMessageSize, encoding: responseEncoding)
        if endStream {
            // Trailers-Only: the status came with the headers.
            trailing = initial
        }
        let waiters = headerWaiters
        headerWaiters = []
        for waiter in waiters { waiter.resume(returning: initial) }
    }

    func trailersComplete() {}

    func receiveData(_ bytes: UnsafeRawBufferPointer) {
        bytesReceived += bytes.count
        guard localStatus == nil, var deframer else {
            handler.consumed(self, bytes: bytes.count)
            return
        }
        deframer.append(bytes)
        do {
            while let message = try deframer.next() {
                if let receiver {
                    self.receiver = nil
                    receiver.resume(returning: message)
                } else {
                    inbound.append(message)
                }
            }
        } catch {
            self.deframer = deframer
            localStatus = CallStatus(code: error.code, message: error.message)
            handler.reset(self, errorCode: NGHTTP2_CANCEL.rawValue)
            return
        }
        self.deframer = deframer
        if inbound.count - inboundHead < Self.bufferedMessagesBeforeBackpressure {
            handler.consumed(self, bytes: bytes.count + owedCredit)
            owedCredit = 0
        } else {
            owedCredit += bytes.count
        }
    }

    func streamClosed(errorCode: UInt32) {
        if errorCode == NGHTTP2_REFUSED_STREAM.rawValue, localStatus == nil, httpStatus == nil,
            let retainedRequest, transparentRetries < Self.maxTransparentRetries
        {
            transparentRetries += 1
            outbound = retainedRequest
            streamID = 0
            handler.open(self, headers: headers)
            return
        }
        if localStatus == nil, grpcStatus == nil, errorCode != NGHTTP2_NO_ERROR.rawValue {
            localStatus = switch errorCode {
            case NGHTTP2_CANCEL.rawValue: CallStatus(code: .cancelled, message: "stream cancelled by the server")
            case NGHTTP2_REFUSED_STREAM.rawValue: CallStatus(code: .unavailable, message: "stream refused by the server")
            case NGHTTP2_ENHANCE_YOUR_CALM.rawValue: CallStatus(code: .resourceExhausted, message: "server said ENHANCE_YOUR_CALM")
            default: CallStatus(code: .internalError, message: "stream reset by the server (HTTP/2 error code \(errorCode))")
            }
        }
        finish()
    }

    /// Ends the call with `status` unless it has ended already (connection failures).
    func closed(status: CallStatus) {
        if localStatus == nil { localStatus = status }
        finish()
    }

    private func finish() {
        guard finalStatus == nil else { return }
        deadlineTimer?.cancel()
        deadlineTimer = nil
        let status: CallStatus
        if let localStatus {
            status = localStatus
        } else if let grpcStatus {
            if grpcStatus == .ok, deframer?.hasPartialMessage == true {
                status = CallStatus(code: .internalError, message: "the response ended inside a message", trailers: trailing)
            } else {
                status = CallStatus(code: grpcStatus, message: grpcMessage, trailers: trailing)
            }
        } else if let httpStatus, httpStatus != 200 {
            status = CallStatus(code: HTTPStatusMapping.code(forHTTPStatus: httpStatus), message: "HTTP status \(httpStatus)")
        } else if let contentType, !contentType.hasPrefix("application/grpc") {
            status = CallStatus(code: .unknown, message: "response content-type \(contentType) is not gRPC")
        } else {
            status = CallStatus(code: .internalError, message: "the server ended the stream without a grpc-status")
        }
        finalStatus = status
        if let receiver {
            self.receiver = nil
            receiver.resume(returning: nil)
        }
        for waiter in headerWaiters { waiter.resume(returning: initial) }
        headerWaiters = []
        for waiter in statusWaiters { waiter.resume(returning: status) }
        statusWaiters = []
        for waiter in sendWaiters { waiter.resume(throwing: CallError(status: status, initialMetadata: initial)) }
        sendWaiters = []
    }

    /// The next response message, or nil at the end (see `ClientResponseStream`).
    func nextMessage() async throws -> ByteBuffer? {
        try await onLoop { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
            if self.inboundHead < self.inbound.count {
                let message = self.inbound[self.inboundHead]
                self.inboundHead += 1
                if self.inboundHead == self.inbound.count {
                    self.inbound.removeAll(keepingCapacity: true)
                    self.inboundHead = 0
                }
                if self.owedCredit > 0, self.inbound.count - self.inboundHead < Self.bufferedMessagesBeforeBackpressure {
                    self.handler.consumed(self, bytes: self.owedCredit)
                    self.owedCredit = 0
                }
                continuation.resume(returning: message)
            } else if self.finalStatus != nil {
                continuation.resume(returning: nil)
            } else {
                self.receiver = continuation
            }
        }
    }
}

/// The response messages of a call, as payload bytes.
public struct ClientResponseStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let call: ClientCall

    public struct AsyncIterator: AsyncIteratorProtocol {
        let call: ClientCall
        public mutating func next() async throws -> ByteBuffer? { try await call.nextMessage() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: call) }
}
