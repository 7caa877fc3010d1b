import Codec
import GRPCClient
import NIOCore

/// A worker's unary calls, run back to back on its connection's event loop: each call is
/// started from the previous one's completion (`GRPCConnection.startUnary`), so a closed-loop
/// slot costs no task wake-up, continuation or executor hop per call. The worker's task
/// only waits for the chain to hand control back: at the end of the run, or when the mix
/// draws a streaming RPC (which the task makes with the async API).
final class UnaryChain: @unchecked Sendable {  // every mutable field is touched only on the connection's event loop
    /// Why the chain handed control back to the worker's task.
    enum Exit {
        case stop
        /// The mix drew a streaming workload for this ticket, already due.
        case stream(workload: Int, ticket: Ticket)
    }

    /// A call the schedule issued: number, due time (monotonic ns), whether it is measured.
    struct Ticket {
        var sequence: Int
        var due: UInt64
        var measured: Bool
    }

    /// The call in flight, for its completion to record.
    private struct InFlight {
        var workload: Int
        var started: UInt64
        /// When the chain started it. At a fixed rate the completion replaces this with the moment
        /// its HEADERS frame went to the socket, so "from the send" is timed as h2load and ghz
        /// time it, without the tool's own request building (the scheduled figure keeps it).
        var sent: UInt64
        var measured: Bool
        var bytesSent: Int
        /// A fresh request kept for retries: its call marks it answered on completion.
        var original: RecentRequests.Entry?
        var resend: CallOutcome.Resend?
    }

    // Shared with every chain of the run (or of the loop): read per call, kept hot in cache.
    private let plan: UnaryPlan
    private let connection: GRPCConnection
    private let statistics: LoopStatistics
    private let control: RunControl

    private var context: GeneratorContext
    private var continuation: CheckedContinuation<Exit, Never>?
    private var inFlight: InFlight?
    /// A ticket drawn before it was due, waiting for its timer.
    private var pending: Ticket?
    /// Trampoline: a completion that arrives while a step runs (a call that fails before it
    /// starts) asks for another step instead of nesting one, so the stack stays flat.
    private var stepping = false
    private var stepAgain = false
    /// Built once per run of the chain (a closure per call would be an allocation per call);
    /// it holds the chain, so `exit` drops it.
    private var onCompletion: (@Sendable (RawUnaryResult) -> Void)?

    init(plan: UnaryPlan, connection: GRPCConnection, statistics: LoopStatistics, control: RunControl, context: GeneratorContext) {
        self.plan = plan
        self.connection = connection
        self.statistics = statistics
        self.control = control
        self.context = context
    }

    /// The worker's generator state: the chain's while it runs, the task's in between.
    var generatorContext: GeneratorContext {
        get { context }
        set { context = newValue }
    }

    /// Runs unary calls until the run stops or a streaming workload comes up.
    func run() async -> Exit {
        await withCheckedContinuation { (continuation: CheckedContinuation<Exit, Never>) in
            let loop = connection.eventLoop
            if loop.inEventLoop {
                start(continuation)
            } else {
                loop.execute { self.start(continuation) }
            }
        }
    }

    private func start(_ continuation: CheckedContinuation<Exit, Never>) {
        self.continuation = continuation
        onCompletion = { result in self.completed(result) }
        advance()
    }

    private func exit(_ reason: Exit) {
        onCompletion = nil
        let continuation = self.continuation
        self.continuation = nil
        continuation?.resume(returning: reason)
    }

    private func advance() {
        if stepping {
            stepAgain = true
            return
        }
        stepping = true
        repeat {
            stepAgain = false
            step()
        } while stepAgain
        stepping = false
    }

    /// Draws the next ticket and starts its call, or arms the timer for it, or exits.
    private func step() {
        let ticket: Ticket
        let now = Monotonic.now()
        if let pending {
            self.pending = nil
            ticket = pending
        } else {
            guard case .go(let sequence, let due, let measured) = control.nextTicket(now: now) else {
                exit(.stop)
                return
            }
            ticket = Ticket(sequence: sequence, due: due, measured: measured)
            if due > now {
                pending = ticket
                connection.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(due)) { self.advance() }
                return
            }
        }
        let index = plan.pick(&context.random)
        let workload = plan.workloads[index]
        guard workload.rpc.kind == .unary else {
            exit(.stream(workload: index, ticket: ticket))
            return
        }
        context.sequence = ticket.sequence
        context.messageIndex = 1
        let request: ByteBuffer
        var resend: CallOutcome.Resend?
        if plan.resends(ticket.sequence), let earlier = plan.recentRequests[index]?.pick(&context.random) {
            request = earlier.request
            resend = earlier.isInFlight ? .whileOriginalInFlight : .afterOriginal
        } else if let constant = plan.constantRequests[index] {
            request = constant
        } else {
            do {
                request = UnaryPlan.frame(try workload.data.encode(&context), allocator: plan.allocator)
            } catch {
                record(Worker.templateFailure(error), workload: index, started: plan.isOpenLoop ? ticket.due : now, sent: now, measured: ticket.measured)
                stepAgain = true
                return
            }
        }
        let original = resend == nil ? plan.recentRequests[index]?.remember(request) : nil
        inFlight = InFlight(
            workload: index, started: plan.isOpenLoop ? ticket.due : now, sent: now, measured: ticket.measured,
            bytesSent: request.readableBytes, original: original, resend: resend)
        connection.startUnary(
            workload.rpc.path, framedRequest: request, metadata: plan.metadata, timeout: plan.timeout,
            completion: onCompletion!)
    }

    private func completed(_ result: RawUnaryResult) {
        guard let call = inFlight else { return }
        inFlight = nil
        call.original?.markAnswered()
        var outcome: CallOutcome
        if let message = result.message {
            outcome = CallOutcome(
                status: "OK", messagesSent: 1, messagesReceived: 1, bytesSent: call.bytesSent,
                bytesReceived: message.readableBytes + 5)
            outcome.flagSet = plan.responseFlags[call.workload]?.isSet(in: message) ?? false
        } else {
            outcome = CallOutcome(
                status: result.status.code.name, message: result.status.message, messagesSent: 1, bytesSent: call.bytesSent)
        }
        outcome.resend = call.resend
        var sent = call.sent
        if plan.isOpenLoop, let requestSentAt = result.requestSentAt { sent = max(requestSentAt.uptimeNanoseconds, sent) }
        record(outcome, workload: call.workload, started: call.started, sent: sent, measured: call.measured)
        if !connection.isAcceptingCalls {
            // The connection is gone: this slot's further calls could only fail at once.
            exit(.stop)
            return
        }
        advance()
    }

    private func record(_ outcome: CallOutcome, workload: Int, started: UInt64, sent: UInt64, measured: Bool) {
        guard measured else { return }
        let ended = Monotonic.now()
        statistics.record(outcome, workload: workload, latency: ended &- started, sendDelay: sent > started ? sent &- started : 0)
        control.recordCompletion(failed: !RPCStatistics.isSuccess(outcome.status), at: ended)
    }
}
