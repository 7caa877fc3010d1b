import Codec
import GRPCClient
import NIOCore

/// One in-flight slot of the run: takes the next call from the schedule, makes it on its
/// connection, records the outcome, until the run stops.
struct Worker: Sendable {
    let index: Int
    let configuration: LoadConfiguration
    let connection: GRPCConnection
    let statistics: LoopStatistics
    let control: RunControl
    let plan: UnaryPlan

    /// Unary calls run in a `UnaryChain` on the connection's loop; the task itself makes only
    /// the streaming calls a mix draws (and the closed loop's ramp-up wait).
    func run() async {
        let context = GeneratorContext(
            random: FastRandom.stream(index, of: configuration.seed), users: configuration.users, batchSize: configuration.batchSize)
        if !control.isOpenLoop, configuration.rampUp > .zero, configuration.concurrency > 1 {
            let delay = Monotonic.nanoseconds(configuration.rampUp) / UInt64(configuration.concurrency) * UInt64(index)
            await sleep(until: control.start + delay)
        }
        let chain = UnaryChain(plan: plan, connection: connection, statistics: statistics, control: control, context: context)
        while true {
            guard case .stream(let workload, let ticket) = await chain.run() else { return }
            var context = chain.generatorContext
            context.sequence = ticket.sequence
            let sent = Monotonic.now()
            let started = control.isOpenLoop ? min(ticket.due, sent) : sent
            let outcome = await stream(configuration.workloads[workload], context: &context)
            chain.generatorContext = context
            let ended = Monotonic.now()
            if ticket.measured {
                statistics.record(outcome, workload: workload, latency: ended &- started, sendDelay: sent &- started)
                control.recordCompletion(failed: !RPCStatistics.isSuccess(outcome.status), at: ended)
            }
            if !connection.isAcceptingCalls {
                // The connection is gone: this slot's further calls could only fail at once.
                return
            }
        }
    }

    /// Suspends until `deadline` (monotonic ns) on the connection's loop timer.
    func sleep(until deadline: UInt64) async {
        let loop = connection.eventLoop
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            loop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) { continuation.resume() }
        }
    }
}
