import Testing

@testable import RPCServer

private typealias Machine = ServerStreamStateMachine
private typealias State = ServerStreamStateMachine.State
private typealias Request = ServerStreamStateMachine.Request

/// One row of a transition table: in state `from`, an event answers `action` and leaves `to`.
struct Transition<Action: Hashable & Sendable>: Sendable, CustomTestStringConvertible {
    let from: ServerStreamStateMachine.State
    let to: ServerStreamStateMachine.State
    let action: Action

    init(_ from: ServerStreamStateMachine.State, _ to: ServerStreamStateMachine.State, _ action: Action) {
        self.from = from
        self.to = to
        self.action = action
    }

    var testDescription: String { "\(from) -> \(to), \(action)" }

    func check(_ event: (inout ServerStreamStateMachine) -> Action, sourceLocation: SourceLocation = #_sourceLocation) {
        var machine = ServerStreamStateMachine(state: from)
        let answer = event(&machine)
        #expect(answer == action, sourceLocation: sourceLocation)
        #expect(machine.state == to, sourceLocation: sourceLocation)
    }
}

/// Every value of `State`, and per event the answer in each of them.
private enum Table {
    static let requests: [Request] = [.open, .closed, .failed]
    static let handlerRunning = [true, false]

    static let all: [State] = {
        var states: [State] = [.awaitingHeaders, .awaitingRequest]
        states += requests.map(State.routed)
        states += requests.map(State.handling)
        states += requests.map(State.responding)
        for request in requests {
            states += handlerRunning.map { State.trailersQueued(request, handlerRunning: $0) }
        }
        for request in requests {
            states += handlerRunning.map { State.draining(request, handlerRunning: $0) }
        }
        states.append(.closed)
        return states
    }()

    /// Every state once: the rows given, and every other state unchanged answering `otherwise`.
    static func rows<Action>(otherwise: Action, _ rows: [Transition<Action>]) -> [Transition<Action>] {
        let listed = Set(rows.map(\.from))
        return rows + all.filter { !listed.contains($0) }.map { Transition($0, $0, otherwise) }
    }

    /// Rows for the states that carry a request and a handler flag after the status.
    static func afterStatus<Action>(
        _ request: Request, _ row: (Request, Bool) -> Transition<Action>
    ) -> [Transition<Action>] {
        handlerRunning.map { row(request, $0) }
    }

    static func routed(singleRequest: Bool) -> [Transition<Machine.OnRouted>] {
        rows(otherwise: .ignore, [Transition(.awaitingHeaders, singleRequest ? .awaitingRequest : .routed(.open), .open)])
    }

    static let rejected: [Transition<Machine.OnRejected>] = rows(
        otherwise: .ignore, [Transition(.awaitingHeaders, .draining(.open, handlerRunning: false), .sendRejection)])

    static let data: [Transition<Machine.OnData>] = rows(
        otherwise: .discard,
        [
            Transition(.awaitingHeaders, .awaitingHeaders, .reset(.protocolError)),
            Transition(.awaitingRequest, .awaitingRequest, .deframe),
            Transition(.routed(.open), .routed(.open), .deframe),
            Transition(.handling(.open), .handling(.open), .deframe),
            Transition(.responding(.open), .responding(.open), .deframe),
            Transition(.routed(.closed), .routed(.closed), .reset(.streamClosed)),
            Transition(.handling(.closed), .handling(.closed), .reset(.streamClosed)),
            Transition(.responding(.closed), .responding(.closed), .reset(.streamClosed)),
        ]
            + afterStatus(.closed) { Transition(.trailersQueued($0, handlerRunning: $1), .trailersQueued($0, handlerRunning: $1), .reset(.streamClosed)) }
            + afterStatus(.closed) { Transition(.draining($0, handlerRunning: $1), .draining($0, handlerRunning: $1), .reset(.streamClosed)) })

    static let endOfRequest: [Transition<Machine.OnEndOfRequest>] = rows(
        otherwise: .none,
        [
            Transition(.awaitingRequest, .routed(.closed), .none),
            Transition(.routed(.open), .routed(.closed), .none),
            Transition(.handling(.open), .handling(.closed), .wakeReceiver),
            Transition(.responding(.open), .responding(.closed), .wakeReceiver),
        ]
            + afterStatus(.open) { Transition(.trailersQueued($0, handlerRunning: $1), .trailersQueued(.closed, handlerRunning: $1), .wakeReceiver) }
            + afterStatus(.open) { Transition(.draining($0, handlerRunning: $1), .draining(.closed, handlerRunning: $1), .wakeReceiver) })

    static let malformed: [Transition<Machine.OnMalformedRequest>] = rows(
        otherwise: .none,
        [
            Transition(.awaitingRequest, .draining(.failed, handlerRunning: false), .sendTrailersOnly),
            Transition(.routed(.open), .draining(.failed, handlerRunning: false), .sendTrailersOnly),
            Transition(.handling(.open), .handling(.failed), .wakeReceiver),
            Transition(.responding(.open), .responding(.failed), .wakeReceiver),
        ]
            + afterStatus(.open) { Transition(.trailersQueued($0, handlerRunning: $1), .trailersQueued(.failed, handlerRunning: $1), .wakeReceiver) }
            + afterStatus(.open) { Transition(.draining($0, handlerRunning: $1), .draining(.failed, handlerRunning: $1), .wakeReceiver) })

    static let startHandler: [Transition<Bool>] = rows(
        otherwise: false, requests.map { Transition(.routed($0), .handling($0), true) })

    static let messageQueued: [Transition<Machine.OnMessageQueued>] = rows(
        otherwise: .none,
        requests.map { Transition(.handling($0), .responding($0), .startResponse) }
            + requests.map { Transition(.responding($0), .responding($0), .resumeResponse) })

    static let responseDrained: [Transition<Machine.OnResponseDrained>] = rows(
        otherwise: .none,
        requests.flatMap { request in
            afterStatus(request) { Transition(.trailersQueued($0, handlerRunning: $1), .draining($0, handlerRunning: $1), .sendTrailers) }
        })

    /// A status from the handler (`cancelHandler` false), the deadline or the shutdown grace.
    static func end(cancelHandler: Bool) -> [Transition<Machine.OnEnd>] {
        rows(
            otherwise: .none,
            [
                Transition(.awaitingHeaders, .draining(.open, handlerRunning: false), .sendTrailersOnly(cancelHandler: false)),
                Transition(.awaitingRequest, .draining(.open, handlerRunning: false), .sendTrailersOnly(cancelHandler: false)),
            ]
                + requests.map { Transition(.routed($0), .draining($0, handlerRunning: false), .sendTrailersOnly(cancelHandler: false)) }
                + requests.map {
                    Transition(.handling($0), .draining($0, handlerRunning: true), .sendTrailersOnly(cancelHandler: cancelHandler))
                }
                + requests.map {
                    Transition(.responding($0), .trailersQueued($0, handlerRunning: true), .queueTrailers(cancelHandler: cancelHandler))
                })
    }

    static let handlerReturned: [Transition<Machine.OnEnd>] = rows(
        otherwise: .none,
        requests.map { Transition(.handling($0), .draining($0, handlerRunning: false), .sendTrailersOnly(cancelHandler: false)) }
            + requests.map { Transition(.responding($0), .trailersQueued($0, handlerRunning: false), .queueTrailers(cancelHandler: false)) }
            + requests.map { Transition(.trailersQueued($0, handlerRunning: true), .trailersQueued($0, handlerRunning: false), .none) }
            + requests.map { Transition(.draining($0, handlerRunning: true), .draining($0, handlerRunning: false), .none) })

    static let streamClosed: [Transition<Machine.OnStreamClosed>] = rows(
        otherwise: .none,
        [
            Transition(.awaitingHeaders, .closed, .close(cancelled: true, cancelHandler: false)),
            Transition(.awaitingRequest, .closed, .close(cancelled: true, cancelHandler: false)),
        ]
            + requests.map { Transition(.routed($0), .closed, .close(cancelled: true, cancelHandler: false)) }
            + requests.map { Transition(.handling($0), .closed, .close(cancelled: true, cancelHandler: true)) }
            + requests.map { Transition(.responding($0), .closed, .close(cancelled: true, cancelHandler: true)) }
            + requests.flatMap { request in
                afterStatus(request) { Transition(.trailersQueued($0, handlerRunning: $1), .closed, .close(cancelled: false, cancelHandler: $1)) }
            }
            + requests.flatMap { request in
                afterStatus(request) { Transition(.draining($0, handlerRunning: $1), .closed, .close(cancelled: false, cancelHandler: $1)) }
            })

    static let everyTable: [(String, [State])] = [
        ("routed single", routed(singleRequest: true).map(\.from)),
        ("routed streaming", routed(singleRequest: false).map(\.from)),
        ("rejected", rejected.map(\.from)),
        ("data", data.map(\.from)),
        ("end of request", endOfRequest.map(\.from)),
        ("malformed", malformed.map(\.from)),
        ("start handler", startHandler.map(\.from)),
        ("message queued", messageQueued.map(\.from)),
        ("response drained", responseDrained.map(\.from)),
        ("finish", end(cancelHandler: false).map(\.from)),
        ("server ends", end(cancelHandler: true).map(\.from)),
        ("handler returned", handlerReturned.map(\.from)),
        ("stream closed", streamClosed.map(\.from)),
    ]
}

/// The per-stream gRPC state, driven without sockets: every event in every state.
@Suite("ServerStreamStateMachine")
struct ServerStreamStateMachineTests {
    typealias Machine = ServerStreamStateMachine
    typealias State = ServerStreamStateMachine.State
    typealias Request = ServerStreamStateMachine.Request

    // MARK: - Every event in every state

    @Test("each table lists every state exactly once", arguments: Table.everyTable)
    func tablesCoverEveryState(name: String, states: [State]) {
        #expect(states.count == Table.all.count, "\(name)")
        #expect(Set(states) == Set(Table.all), "\(name)")
    }

    @Test("valid headers of a single-request call wait for the request", arguments: Table.routed(singleRequest: true))
    func routedSingleRequest(_ row: Transition<Machine.OnRouted>) {
        row.check { $0.routed(singleRequest: true) }
    }

    @Test("valid headers of a streaming call are ready to start", arguments: Table.routed(singleRequest: false))
    func routedStreaming(_ row: Transition<Machine.OnRouted>) {
        row.check { $0.routed(singleRequest: false) }
    }

    @Test("headers that are not gRPC are rejected only while awaiting headers", arguments: Table.rejected)
    func rejected(_ row: Transition<Machine.OnRejected>) {
        row.check { $0.rejected() }
    }

    @Test("request DATA", arguments: Table.data)
    func data(_ row: Transition<Machine.OnData>) {
        row.check { $0.dataReceived() }
    }

    @Test("END_STREAM from the client", arguments: Table.endOfRequest)
    func endOfRequest(_ row: Transition<Machine.OnEndOfRequest>) {
        row.check { $0.requestEnded() }
    }

    @Test("a malformed request message", arguments: Table.malformed)
    func malformed(_ row: Transition<Machine.OnMalformedRequest>) {
        row.check { $0.requestMalformed() }
    }

    @Test("starting the handler", arguments: Table.startHandler)
    func startHandler(_ row: Transition<Bool>) {
        row.check { $0.startHandler() }
    }

    @Test("the handler queues a response message", arguments: Table.messageQueued)
    func messageQueued(_ row: Transition<Machine.OnMessageQueued>) {
        row.check { $0.messageQueued() }
    }

    @Test("nghttp2 pulled every response byte", arguments: Table.responseDrained)
    func responseDrained(_ row: Transition<Machine.OnResponseDrained>) {
        row.check { $0.responseDrained() }
    }

    @Test("a status from the handler (or routing)", arguments: Table.end(cancelHandler: false))
    func finish(_ row: Transition<Machine.OnEnd>) {
        row.check { $0.finish() }
    }

    @Test("the deadline passes", arguments: Table.end(cancelHandler: true))
    func deadlinePassed(_ row: Transition<Machine.OnEnd>) {
        row.check { $0.deadlinePassed() }
    }

    @Test("the connection's shutdown grace runs out", arguments: Table.end(cancelHandler: true))
    func shutdownGraceExpired(_ row: Transition<Machine.OnEnd>) {
        row.check { $0.shutdownGraceExpired() }
    }

    @Test("the handler's body returns", arguments: Table.handlerReturned)
    func handlerReturned(_ row: Transition<Machine.OnEnd>) {
        row.check { $0.handlerReturned() }
    }

    @Test("nghttp2 closes the stream (done, RST_STREAM, connection gone)", arguments: Table.streamClosed)
    func streamClosed(_ row: Transition<Machine.OnStreamClosed>) {
        row.check { $0.streamClosed() }
    }

    // MARK: - What the stream asks in each state

    @Test("queries answer from the state alone", arguments: Table.all)
    func queries(_ state: State) {
        let machine = Machine(state: state)
        let (headersSent, handlerRuns, statusDecided, request): (Bool, Bool, Bool, Request?) =
            switch state {
            case .awaitingHeaders, .awaitingRequest: (false, false, false, .open)
            case .routed(let request): (false, false, false, request)
            case .handling(let request): (false, true, false, request)
            case .responding(let request): (true, true, false, request)
            case .trailersQueued(let request, let running), .draining(let request, let running): (true, running, true, request)
            case .closed: (true, false, true, nil)
            }
        #expect(machine.acceptsInitialMetadata == !headersSent)
        #expect(machine.acceptsResponseMessages == (handlerRuns && !statusDecided))
        #expect(machine.isHandlerRunning == handlerRuns)
        #expect(machine.isFinished == statusDecided)
        #expect(machine.isClosed == (state == .closed))
        let receive: Machine.OnReceive =
            switch request {
            case nil: .cancelled
            case .open: .wait
            case .closed: .endOfRequest
            case .failed: .requestFailed
            }
        #expect(machine.onReceive == receive)
    }

    @Test("the machine is a two-byte trivial value: events copy no references")
    func layout() {
        #expect(MemoryLayout<Machine>.size <= 2)
        #expect(_isPOD(Machine.self))
    }

    // MARK: - Whole calls

    @Test("a unary call: request in, handler started, message and trailers out, closed")
    func unaryCall() {
        var machine = Machine()
        #expect(machine.routed(singleRequest: true) == .open)
        #expect(machine.dataReceived() == .deframe)
        #expect(machine.startHandler() == false)
        #expect(machine.requestEnded() == .none)
        #expect(machine.startHandler() == true)
        #expect(machine.onReceive == .endOfRequest)
        #expect(machine.messageQueued() == .startResponse)
        #expect(machine.finish() == .queueTrailers(cancelHandler: false))
        #expect(machine.handlerReturned() == .none)
        #expect(machine.responseDrained() == .sendTrailers)
        #expect(machine.streamClosed() == .close(cancelled: false, cancelHandler: false))
        #expect(machine.state == .closed)
    }

    @Test("a bidi call: the handler reads while the client sends, then writes and ends")
    func bidiCall() {
        var machine = Machine()
        #expect(machine.routed(singleRequest: false) == .open)
        #expect(machine.startHandler() == true)
        #expect(machine.onReceive == .wait)
        #expect(machine.dataReceived() == .deframe)
        #expect(machine.messageQueued() == .startResponse)
        #expect(machine.messageQueued() == .resumeResponse)
        #expect(machine.requestEnded() == .wakeReceiver)
        #expect(machine.onReceive == .endOfRequest)
        #expect(machine.responseDrained() == .none)
        #expect(machine.finish() == .queueTrailers(cancelHandler: false))
        #expect(machine.handlerReturned() == .none)
        #expect(machine.responseDrained() == .sendTrailers)
        #expect(machine.state == .draining(.closed, handlerRunning: false))
    }

    // MARK: - Events a well-behaved peer or handler never causes

    @Test(
        "DATA after END_STREAM resets the stream with STREAM_CLOSED, whatever the call is doing",
        arguments: [
            State.routed(.closed), .handling(.closed), .responding(.closed),
            .trailersQueued(.closed, handlerRunning: true), .draining(.closed, handlerRunning: false),
        ])
    func dataAfterEndOfStream(_ state: State) {
        var machine = Machine(state: state)
        #expect(machine.dataReceived() == .reset(.streamClosed))
        #expect(machine.requestEnded() == .none)
        #expect(machine.state == state)
    }

    @Test("a second status is dropped: trailers go out once", arguments: [false, true])
    func trailersTwice(responseStarted: Bool) {
        var machine = Machine(state: responseStarted ? .responding(.closed) : .handling(.closed))
        #expect(machine.finish() != .none)
        let afterFirst = machine.state
        #expect(machine.finish() == .none)
        #expect(machine.deadlinePassed() == .none)
        #expect(machine.shutdownGraceExpired() == .none)
        #expect(machine.state == afterFirst)
        if responseStarted {
            #expect(machine.responseDrained() == .sendTrailers)
            #expect(machine.responseDrained() == .none)
        }
    }

    @Test("a reset between routing and the handler's start: the handler never starts", arguments: [true, false])
    func resetDuringHandlerStart(singleRequest: Bool) {
        var machine = Machine()
        _ = machine.routed(singleRequest: singleRequest)
        _ = machine.requestEnded()
        #expect(machine.streamClosed() == .close(cancelled: true, cancelHandler: false))
        #expect(machine.startHandler() == false)
        #expect(machine.finish() == .none)
        #expect(machine.onReceive == .cancelled)
    }

    @Test("a reset while the handler runs cancels it once; its return changes nothing")
    func resetWhileHandling() {
        var machine = Machine(state: .handling(.open))
        #expect(machine.streamClosed() == .close(cancelled: true, cancelHandler: true))
        #expect(machine.streamClosed() == .none)
        #expect(machine.handlerReturned() == .none)
        #expect(machine.acceptsResponseMessages == false)
        #expect(machine.state == .closed)
    }

    @Test(
        "a deadline once the status is out (draining) changes nothing",
        arguments: Table.requests.flatMap { request in
            Table.handlerRunning.flatMap { [State.draining(request, handlerRunning: $0), .trailersQueued(request, handlerRunning: $0)] }
        })
    func deadlineDuringDrain(_ state: State) {
        var machine = Machine(state: state)
        #expect(machine.deadlinePassed() == .none)
        #expect(machine.shutdownGraceExpired() == .none)
        #expect(machine.state == state)
    }

    @Test("a deadline after the shutdown grace ended the call changes nothing")
    func deadlineAfterShutdownGrace() {
        var machine = Machine(state: .responding(.open))
        #expect(machine.shutdownGraceExpired() == .queueTrailers(cancelHandler: true))
        #expect(machine.deadlinePassed() == .none)
        #expect(machine.responseDrained() == .sendTrailers)
        #expect(machine.deadlinePassed() == .none)
        #expect(machine.state == .draining(.open, handlerRunning: true))
    }
}
