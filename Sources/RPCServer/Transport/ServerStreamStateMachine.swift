/// The life of one gRPC call on one HTTP/2 stream, without I/O: `ServerStream` reports what
/// happened (nghttp2 callbacks, the handler, the connection's timers) and does what the answer
/// says (resume a waiter, submit headers or trailers, reset the stream, cancel the handler).
///
/// Every event has an answer in every state. Events a well-behaved peer and handler never cause
/// (DATA after END_STREAM, a second status, a deadline once the status is out) are answered as
/// HTTP/2 and gRPC ask, or ignored; none traps.
///
/// The state is a trivial value of two bytes, so events on the hot path cost a switch and a
/// store, no allocation and no reference counting.
struct ServerStreamStateMachine {
    /// The client's half of the stream, as the handler reads it.
    enum Request: Hashable, Sendable {
        /// More request DATA may come.
        case open
        /// The client half-closed (END_STREAM) after whole messages.
        case closed
        /// A message could not be deframed (too large, bad compression, cut short by
        /// END_STREAM); the reader gets the stream's request error.
        case failed
    }

    enum State: Hashable, Sendable {
        /// Request HEADERS are arriving: the call is not routed yet.
        case awaitingHeaders
        /// A routed single-request call (unary, server streaming): its handler starts only
        /// once the whole request is in, so it never waits for its message.
        case awaitingRequest
        /// Routed and ready, the handler not started yet.
        case routed(Request)
        /// The handler runs; no response headers went out yet.
        case handling(Request)
        /// The handler runs and the response headers went out (messages may be buffered).
        case responding(Request)
        /// The status is decided; its trailers wait for nghttp2 to pull the buffered messages.
        case trailersQueued(Request, handlerRunning: Bool)
        /// The status is with nghttp2 (trailers, Trailers-Only or an HTTP rejection); the
        /// stream waits for nghttp2 to send it and close the stream.
        case draining(Request, handlerRunning: Bool)
        /// nghttp2 closed the stream (done, reset by the client, or the connection went away).
        case closed
    }

    private(set) var state: State

    init(state: State = .awaitingHeaders) {
        self.state = state
    }

    // MARK: - Request headers

    enum OnRouted: Hashable, Sendable {
        /// Set the call up (deframer, deadline, context).
        case open
        /// The call is already routed or over: a second set of request headers changes nothing.
        case ignore
    }

    /// The request headers were valid gRPC and named a known method.
    mutating func routed(singleRequest: Bool) -> OnRouted {
        guard case .awaitingHeaders = state else { return .ignore }
        state = singleRequest ? .awaitingRequest : .routed(.open)
        return .open
    }

    enum OnRejected: Hashable, Sendable {
        /// Answer with a plain HTTP status in one HEADERS frame that ends the stream.
        case sendRejection
        case ignore
    }

    /// The request headers were not gRPC at all (wrong HTTP method or content-type).
    mutating func rejected() -> OnRejected {
        guard case .awaitingHeaders = state else { return .ignore }
        state = .draining(.open, handlerRunning: false)
        return .sendRejection
    }

    // MARK: - Request DATA

    /// HTTP/2 error codes this machine resets streams with (RFC 9113, section 7).
    enum ResetCode: UInt32, Hashable, Sendable {
        case protocolError = 0x1
        case streamClosed = 0x5
    }

    enum OnData: Hashable, Sendable {
        /// Deframe the bytes for the handler; their credit returns as it takes the messages.
        case deframe
        /// Nobody will read them: return their credit at once.
        case discard
        /// The peer broke HTTP/2: reset the stream with this code and return the credit.
        case reset(ResetCode)
    }

    /// Request DATA arrived (it changes no state: a reset takes effect when nghttp2 closes the
    /// stream).
    func dataReceived() -> OnData {
        switch state {
        case .awaitingHeaders:
            // DATA before the request HEADERS are complete (RFC 9113, section 8.1).
            return .reset(.protocolError)
        case .awaitingRequest:
            return .deframe
        case .routed(let request), .handling(let request), .responding(let request):
            return Self.onData(request, readable: true)
        case .trailersQueued(let request, _), .draining(let request, _):
            return Self.onData(request, readable: false)
        case .closed:
            return .discard
        }
    }

    private static func onData(_ request: Request, readable: Bool) -> OnData {
        switch request {
        case .open: readable ? .deframe : .discard
        // DATA on a half-closed (remote) stream (RFC 9113, section 5.1).
        case .closed: .reset(.streamClosed)
        case .failed: .discard
        }
    }

    enum OnEndOfRequest: Hashable, Sendable {
        /// A reader waiting for the next message finds the end of the request.
        case wakeReceiver
        case none
    }

    /// The client half-closed the stream after whole messages (END_STREAM on HEADERS, DATA
    /// or trailers).
    mutating func requestEnded() -> OnEndOfRequest {
        switch state {
        case .awaitingRequest, .routed(.open):
            state = .routed(.closed)
            return .none
        default:
            // Once ended (END_STREAM twice, or after a failure) it stays as the reader saw it.
            return endReadableRequest(as: .closed) ? .wakeReceiver : .none
        }
    }

    enum OnMalformedRequest: Hashable, Sendable {
        /// A reader waiting for the next message gets the request error.
        case wakeReceiver
        /// No handler ran: the request error is the call's status, in a Trailers-Only response.
        case sendTrailersOnly
        /// The request had already ended: keep what the reader was told.
        case none
    }

    /// A request message could not be deframed, or END_STREAM cut one short.
    mutating func requestMalformed() -> OnMalformedRequest {
        switch state {
        case .awaitingRequest, .routed(.open):
            state = .draining(.failed, handlerRunning: false)
            return .sendTrailersOnly
        default:
            return endReadableRequest(as: .failed) ? .wakeReceiver : .none
        }
    }

    /// Ends the request, if still open, of a call whose handler started or whose status is
    /// out (a handler may be reading it); false in every other state.
    private mutating func endReadableRequest(as end: Request) -> Bool {
        switch state {
        case .handling(.open):
            state = .handling(end)
        case .responding(.open):
            state = .responding(end)
        case .trailersQueued(.open, let handlerRunning):
            state = .trailersQueued(end, handlerRunning: handlerRunning)
        case .draining(.open, let handlerRunning):
            state = .draining(end, handlerRunning: handlerRunning)
        case .awaitingHeaders, .awaitingRequest, .routed, .handling, .responding, .trailersQueued, .draining, .closed:
            return false
        }
        return true
    }

    /// What a reader of the request finds when no message is buffered.
    enum OnReceive: Hashable, Sendable {
        /// More may come: wait for it.
        case wait
        /// The client half-closed: the request is over.
        case endOfRequest
        /// Throw the stream's request error.
        case requestFailed
        /// The stream is gone: throw cancellation.
        case cancelled
    }

    var onReceive: OnReceive {
        switch state {
        case .awaitingHeaders, .awaitingRequest:
            return .wait
        case .routed(let request), .handling(let request), .responding(let request),
            .trailersQueued(let request, _), .draining(let request, _):
            switch request {
            case .open: return .wait
            case .closed: return .endOfRequest
            case .failed: return .requestFailed
            }
        case .closed:
            return .cancelled
        }
    }

    // MARK: - Handler

    /// Whether the handler starts now (then it is counted as running); a single-request
    /// call's handler waits for the whole request.
    mutating func startHandler() -> Bool {
        guard case .routed(let request) = state else { return false }
        state = .handling(request)
        return true
    }

    var isHandlerRunning: Bool {
        switch state {
        case .handling, .responding, .trailersQueued(_, true), .draining(_, true): true
        case .awaitingHeaders, .awaitingRequest, .routed, .trailersQueued, .draining, .closed: false
        }
    }

    /// Whether a response header field set now still goes out with the response headers.
    var acceptsInitialMetadata: Bool {
        switch state {
        case .awaitingHeaders, .awaitingRequest, .routed, .handling: true
        case .responding, .trailersQueued, .draining, .closed: false
        }
    }

    /// Whether the handler may still send messages (else its send fails as cancelled).
    var acceptsResponseMessages: Bool {
        switch state {
        case .handling, .responding: true
        case .awaitingHeaders, .awaitingRequest, .routed, .trailersQueued, .draining, .closed: false
        }
    }

    enum OnMessageQueued: Hashable, Sendable {
        /// Submit the response headers with a data provider that pulls the messages.
        case startResponse
        /// Tell nghttp2 the deferred data provider has more.
        case resumeResponse
        case none
    }

    /// The handler framed a response message into the stream's buffer.
    mutating func messageQueued() -> OnMessageQueued {
        switch state {
        case .handling(let request):
            state = .responding(request)
            return .startResponse
        case .responding:
            return .resumeResponse
        case .awaitingHeaders, .awaitingRequest, .routed, .trailersQueued, .draining, .closed:
            return .none
        }
    }

    enum OnResponseDrained: Hashable, Sendable {
        /// Every message is out: submit the queued trailers.
        case sendTrailers
        /// Defer until more is queued.
        case none
    }

    /// nghttp2 pulled every buffered response byte.
    mutating func responseDrained() -> OnResponseDrained {
        guard case .trailersQueued(let request, let handlerRunning) = state else { return .none }
        state = .draining(request, handlerRunning: handlerRunning)
        return .sendTrailers
    }

    // MARK: - Status

    /// How the call's status goes out, and whether the handler is cancelled after it.
    enum OnEnd: Hashable, Sendable {
        /// No response headers went out: one HEADERS frame carries the status and END_STREAM.
        case sendTrailersOnly(cancelHandler: Bool)
        /// Trailers go behind the buffered messages; nghttp2 pulls them.
        case queueTrailers(cancelHandler: Bool)
        /// The status is already decided, or the stream is closed: a second status is dropped.
        case none
    }

    /// The call ends with a status from its handler, or from routing before any handler ran.
    mutating func finish() -> OnEnd {
        end(cancellingHandler: false)
    }

    /// The call's deadline passed: DEADLINE_EXCEEDED, and the handler is cancelled.
    mutating func deadlinePassed() -> OnEnd {
        end(cancellingHandler: true)
    }

    /// The connection's graceful shutdown ran out of time: UNAVAILABLE, handler cancelled.
    mutating func shutdownGraceExpired() -> OnEnd {
        end(cancellingHandler: true)
    }

    /// The handler's body returned. Dispatch always gives a status first; a handler that did
    /// not would leave the client waiting, so it ends the call (as an internal error).
    mutating func handlerReturned() -> OnEnd {
        switch state {
        case .handling(let request):
            state = .draining(request, handlerRunning: false)
            return .sendTrailersOnly(cancelHandler: false)
        case .responding(let request):
            state = .trailersQueued(request, handlerRunning: false)
            return .queueTrailers(cancelHandler: false)
        case .trailersQueued(let request, true):
            state = .trailersQueued(request, handlerRunning: false)
            return .none
        case .draining(let request, true):
            state = .draining(request, handlerRunning: false)
            return .none
        case .awaitingHeaders, .awaitingRequest, .routed, .trailersQueued, .draining, .closed:
            return .none
        }
    }

    private mutating func end(cancellingHandler: Bool) -> OnEnd {
        switch state {
        case .awaitingHeaders, .awaitingRequest:
            state = .draining(.open, handlerRunning: false)
            return .sendTrailersOnly(cancelHandler: false)
        case .routed(let request):
            state = .draining(request, handlerRunning: false)
            return .sendTrailersOnly(cancelHandler: false)
        case .handling(let request):
            state = .draining(request, handlerRunning: true)
            return .sendTrailersOnly(cancelHandler: cancellingHandler)
        case .responding(let request):
            state = .trailersQueued(request, handlerRunning: true)
            return .queueTrailers(cancelHandler: cancellingHandler)
        case .trailersQueued, .draining, .closed:
            return .none
        }
    }

    /// Whether the call has its status (or its stream is gone): deadlines no longer apply.
    var isFinished: Bool {
        switch state {
        case .trailersQueued, .draining, .closed: true
        case .awaitingHeaders, .awaitingRequest, .routed, .handling, .responding: false
        }
    }

    // MARK: - Close

    enum OnStreamClosed: Hashable, Sendable {
        /// Fail whoever waits (reader, writer), drop the buffered request and return its
        /// connection-level credit (stream-level credit dies with the stream). `cancelled`:
        /// the call had no status, so it counts as cancelled by the client; `cancelHandler`:
        /// the handler still runs.
        case close(cancelled: Bool, cancelHandler: Bool)
        case none
    }

    /// nghttp2 closed the stream: after the status went out, on the client's RST_STREAM, or
    /// because the connection went away.
    mutating func streamClosed() -> OnStreamClosed {
        let action: OnStreamClosed
        switch state {
        case .awaitingHeaders, .awaitingRequest, .routed:
            action = .close(cancelled: true, cancelHandler: false)
        case .handling, .responding:
            action = .close(cancelled: true, cancelHandler: true)
        case .trailersQueued(_, let handlerRunning), .draining(_, let handlerRunning):
            action = .close(cancelled: false, cancelHandler: handlerRunning)
        case .closed:
            return .none
        }
        state = .closed
        return action
    }

    var isClosed: Bool {
        if case .closed = state { true } else { false }
    }
}
