import Testing

@testable import RPCServer

private typealias Machine = ServerStreamStateMachine
private typealias State = ServerStreamStateMachine.State
private typealias Request = ServerStreamStateMachine.Request

/// Each event the stream reports, as one call on the machine.
enum StreamEvent: String, CaseIterable, Sendable {
    case routedSingleRequest, routedStreaming, rejected
    case dataReceived, requestEnded, requestMalformed
    case startHandler, messageQueued, responseDrained
    case finish, deadlinePassed, shutdownGraceExpired, handlerReturned
    case streamClosed

    func send(to machine: inout ServerStreamStateMachine) -> StreamAnswer {
        switch self {
        case .routedSingleRequest: .routed(machine.routed(singleRequest: true))
        case .routedStreaming: .routed(machine.routed(singleRequest: false))
        case .rejected: .rejected(machine.rejected())
        case .dataReceived: .data(machine.dataReceived())
        case .requestEnded: .endOfRequest(machine.requestEnded())
        case .requestMalformed: .malformed(machine.requestMalformed())
        case .startHandler: .started(machine.startHandler())
        case .messageQueued: .messageQueued(machine.messageQueued())
        case .responseDrained: .drained(machine.responseDrained())
        case .finish: .end(machine.finish())
        case .deadlinePassed: .end(machine.deadlinePassed())
        case .shutdownGraceExpired: .end(machine.shutdownGraceExpired())
        case .handlerReturned: .end(machine.handlerReturned())
        case .streamClosed: .closed(machine.streamClosed())
        }
    }
}

/// The machine's answer to any event, so one table row type serves them all.
enum StreamAnswer: Hashable, Sendable {
    case routed(ServerStreamStateMachine.OnRouted)
    case rejected(ServerStreamStateMachine.OnRejected)
    case data(ServerStreamStateMachine.OnData)
    case endOfRequest(ServerStreamStateMachine.OnEndOfRequest)
    case malformed(ServerStreamStateMachine.OnMalformedRequest)
    case started(Bool)
    case messageQueued(ServerStreamStateMachine.OnMessageQueued)
    case drained(ServerStreamStateMachine.OnResponseDrained)
    case end(ServerStreamStateMachine.OnEnd)
    case closed(ServerStreamStateMachine.OnStreamClosed)
}

/// One row of the transition table: `event` in state `from` answers `answer` and leaves `to`.
struct Transition: Sendable, CustomTestStringConvertible {
    let event: StreamEvent
    let from: ServerStreamStateMachine.State
    let to: ServerStreamStateMachine.State
    let answer: StreamAnswer

    var testDescription: String { "\(event) in \(from): \(answer), then \(to)" }
}

/// Every value of `State`, and for each event its answer in every one of them.
private enum Table {
    static let requests: [Request] = [.open, .closed, .failed]
    static let handlerRunning = [true, false]

    static let all: [State] = {
        var states: [State] = [.awaitingHeaders, .awaitingRequest]
        states += requests.map(State.routed)
        states += requests.map(State.handling)
        states += requests.map(State.responding)
        for request in requests { states += afterStatus(request) }
        states.append(.closed)
        return states
    }()

    /// The states with the status decided (trailers queued or draining) and this request.
    static func afterStatus(_ request: Request) -> [State] {
        handlerRunning.map { State.trailersQueued(request, handlerRunning: $0) }
            + handlerRunning.map { State.draining(request, handlerRunning: $0) }
    }

    /// A state change with its answer.
    struct Change {
        let from: State
        let to: State
        let answer: StreamAnswer

        init(_ from: State, _ to: State, _ answer: StreamAnswer) {
            self.from = from
            self.to = to
            self.answer = answer
        }
    }

    /// `event` in every state once: the changes listed, every other state unchanged answering
    /// `otherwise`.
    static func rows(_ event: StreamEvent, otherwise: StreamAnswer, _ changes: [Change]) -> [Transition] {
        let listed = Set(changes.map(\.from))
        let unchanged = all.filter { !listed.contains($0) }.map { Change($0, $0, otherwise) }
        return (changes + unchanged).map { Transition(event: event, from: $0.from, to: $0.to, answer: $0.answer) }
    }

    static let transitions: [Transition] = StreamEvent.allCases.flatMap(transitions(of:))

    static func transitions(of event: StreamEvent) -> [Transition] {
        switch event {
        case .routedSingleRequest:
            return rows(event, otherwise: .routed(.ignore), [Change(.awaitingHeaders, .awaitingRequest, .routed(.open))])
        case .routedStreaming:
            return rows(event, otherwise: .routed(.ignore), [Change(.awaitingHeaders, .routed(.open), .routed(.open))])
        case .rejected:
            return rows(
                event, otherwise: .rejected(.ignore),
                [Change(.awaitingHeaders, .draining(.open, handlerRunning: false), .rejected(.sendRejection))])
        case .dataReceived:
            var changes = [
                Change(.awaitingHeaders, .awaitingHeaders, .data(.reset(.protocolError))),
                Change(.awaitingRequest, .awaitingRequest, .data(.deframe)),
            ]
            for state in [State.routed(.open), .handling(.open), .responding(.open)] {
                changes.append(Change(state, state, .data(.deframe)))
            }
            for state in [State.routed(.closed), .handling(.closed), .responding(.closed)] + afterStatus(.closed) {
                changes.append(Change(state, state, .data(.reset(.streamClosed))))
            }
            return rows(event, otherwise: .data(.discard), changes)
        case .requestEnded:
            return rows(
                event, otherwise: .endOfRequest(.none),
                [
                    Change(.awaitingRequest, .routed(.closed), .endOfRequest(.none)),
                    Change(.routed(.open), .routed(.closed), .endOfRequest(.none)),
                ] + endingReadableRequest(as: .closed, .endOfRequest(.wakeReceiver)))
        case .requestMalformed:
            return rows(
                event, otherwise: .malformed(.none),
                [
                    Change(.awaitingRequest, .draining(.failed, handlerRunning: false), .malformed(.sendTrailersOnly)),
                    Change(.routed(.open), .draining(.failed, handlerRunning: false), .malformed(.sendTrailersOnly)),
                ] + endingReadableRequest(as: .failed, .malformed(.wakeReceiver)))
        case .startHandler:
            return rows(event, otherwise: .started(false), requests.map { Change(.routed($0), .handling($0), .started(true)) })
        case .messageQueued:
            var changes = requests.map { Change(.handling($0), .responding($0), .messageQueued(.startResponse)) }
            changes += requests.map { Change(.responding($0), .responding($0), .messageQueued(.resumeResponse)) }
            return rows(event, otherwise: .messageQueued(.none), changes)
        case .responseDrained:
            var changes: [Change] = []
            for request in requests {
                for running in handlerRunning {
                    changes.append(
                        Change(
                            .trailersQueued(request, handlerRunning: running), .draining(request, handlerRunning: running),
                            .drained(.sendTrailers)))
                }
            }
            return rows(event, otherwise: .drained(.none), changes)
        case .finish:
            return rows(event, otherwise: .end(.none), ending(cancelHandler: false))
        case .deadlinePassed, .shutdownGraceExpired:
            return rows(event, otherwise: .end(.none), ending(cancelHandler: true))
        case .handlerReturned:
            var changes = requests.map {
                Change(.handling($0), .draining($0, handlerRunning: false), .end(.sendTrailersOnly(cancelHandler: false)))
            }
            changes += requests.map {
                Change(.responding($0), .trailersQueued($0, handlerRunning: false), .end(.queueTrailers(cancelHandler: false)))
            }
            changes += requests.map { Change(.trailersQueued($0, handlerRunning: true), .trailersQueued($0, handlerRunning: false), .end(.none)) }
            changes += requests.map { Change(.draining($0, handlerRunning: true), .draining($0, handlerRunning: false), .end(.none)) }
            return rows(event, otherwise: .end(.none), changes)
        case .streamClosed:
            var changes = [State.awaitingHeaders, .awaitingRequest].map {
                Change($0, .closed, .closed(.close(cancelled: true, cancelHandler: false)))
            }
            changes += requests.map { Change(.routed($0), .closed, .closed(.close(cancelled: true, cancelHandler: false))) }
            changes += requests.map { Change(.handling($0), .closed, .closed(.close(cancelled: true, cancelHandler: true))) }
            changes += requests.map { Change(.responding($0), .closed, .closed(.close(cancelled: true, cancelHandler: true))) }
            for request in requests {
                for running in handlerRunning {
                    let answer = StreamAnswer.closed(.close(cancelled: false, cancelHandler: running))
                    changes.append(Change(.trailersQueued(request, handlerRunning: running), .closed, answer))
                    changes.append(Change(.draining(request, handlerRunning: running), .closed, answer))
                }
            }
            return rows(event, otherwise: .closed(.none), changes)
        }
    }

    /// END_STREAM or a malformed message once a handler may be reading the open request.
    static func endingReadableRequest(as end: Request, _ answer: StreamAnswer) -> [Change] {
        var changes = [Change(.handling(.open), .handling(end), answer), Change(.responding(.open), .responding(end), answer)]
        for running in handlerRunning {
            changes.append(Change(.trailersQueued(.open, handlerRunning: running), .trailersQueued(end, handlerRunning: running), answer))
            changes.append(Change(.draining(.open, handlerRunning: running), .draining(end, handlerRunning: running), answer))
        }
        return changes
    }

    /// A status from the handler (`cancelHandler` false), the deadline or the shutdown grace.
    static func ending(cancelHandler: Bool) -> [Change] {
        let trailersOnly = StreamAnswer.end(.sendTrailersOnly(cancelHandler: false))
        var changes = [
            Change(.awaitingHeaders, .draining(.open, handlerRunning: false), trailersOnly),
            Change(.awaitingRequest, .draining(.open, handlerRunning: false), trailersOnly),
        ]
        changes += requests.map { Change(.routed($0), .draining($0, handlerRunning: false), trailersOnly) }
        changes += requests.map {
            Change(.handling($0), .draining($0, handlerRunning: true), .end(.sendTrailersOnly(cancelHandler: cancelHandler)))
        }
        changes += requests.map {
            Change(.responding($0), .trailersQueued($0, handlerRunning: true), .end(.queueTrailers(cancelHandler: cancelHandler)))
        }
        return changes
    }
}

/// The per-stream gRPC state, driven without sockets: every event in every state.
@Suite("ServerStreamStateMachine")
struct ServerStreamStateMachineTests {
    typealias Machine = ServerStreamStateMachine
    typealias State = ServerStreamStateMachine.State
    typealias Request = ServerStreamStateMachine.Request

    // MARK: - Every event in every state

    @Test("the table has a row for every event in every state, once", arguments: StreamEvent.allCases)
    func tableCoversEveryState(_ event: StreamEvent) {
        let states = Table.transitions.filter { $0.event == event }.map(\.from)
        #expect(states.count == Table.all.count)
        #expect(Set(states) == Set(Table.all))
    }

    @Test("every event in every state", arguments: Table.transitions)
    func transition(_ row: Transition) {
        var machine = Machine(state: row.from)
        let answer = row.event.send(to: &machine)
        #expect(answer == row.answer)
        #expect(machine.state == row.to)
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
        arguments: Table.requests.flatMap(Table.afterStatus))
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
