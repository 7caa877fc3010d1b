import NIOCore
import Synchronization

/// The run's shared schedule and counters: which call comes next, when it is due, whether
/// it is measured, and when to stop. Lock-free; workers on every loop draw from it.
final class RunControl: Sendable {
    enum Ticket {
        /// `sequence` from 1; `due` in monotonic nanoseconds.
        case go(sequence: Int, due: UInt64, measured: Bool)
        case stop
    }

    let start: UInt64
    let measureStart: UInt64
    /// Duration mode: no call due at or after this starts.
    let end: UInt64?
    let totalRequests: Int?
    /// Calls per nanosecond, open loop only.
    private let ratePerNanosecond: Double?
    private let rampUp: UInt64

    private let issued = Atomic<Int>(0)
    private let measured = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    /// Measured calls finished, and those among them that failed (for the progress line).
    let completed = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    /// When the last measured call ended.
    let lastCompletion = Atomic<UInt64>(0)

    init(configuration: LoadConfiguration, start: UInt64) {
        self.start = start
        self.measureStart = start + Monotonic.nanoseconds(configuration.warmup)
        switch configuration.stop {
        case .requests(let count):
            self.totalRequests = count
            self.end = nil
        case .duration(let duration):
            self.totalRequests = nil
            self.end = measureStart + Monotonic.nanoseconds(duration)
        }
        self.ratePerNanosecond = configuration.rate.map { $0 / 1e9 }
        self.rampUp = Monotonic.nanoseconds(configuration.rampUp)
    }

    var isOpenLoop: Bool { ratePerNanosecond != nil }

    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// The next call: its number, when it is due (open loop: on the schedule; closed loop:
    /// `now`), and whether it counts.
    func nextTicket(now: UInt64) -> Ticket {
        if stopped.load(ordering: .relaxed) { return .stop }
        let index = issued.wrappingAdd(1, ordering: .relaxed).oldValue
        let due = ratePerNanosecond.map { start + offset(ofCall: index, rate: $0) } ?? now
        if let end, due >= end {
            stop()
            return .stop
        }
        let isMeasured = due >= measureStart
        if isMeasured, let totalRequests {
            let position = measured.wrappingAdd(1, ordering: .relaxed).oldValue
            if position >= totalRequests {
                stop()
                return .stop
            }
        }
        return .go(sequence: index + 1, due: due, measured: isMeasured)
    }

    /// When call `index` is due after the start: a linear rate ramp over `rampUp` (the
    /// calls of the ramp fall at sqrt(2·T·i/r)), then one call every 1/r.
    private func offset(ofCall index: Int, rate: Double) -> UInt64 {
        let position = Double(index)
        guard rampUp > 0 else { return UInt64(position / rate) }
        let ramp = Double(rampUp)
        let callsInRamp = rate * ramp / 2
        if position < callsInRamp { return UInt64((2 * ramp * position / rate).squareRoot()) }
        return UInt64(ramp + (position - callsInRamp) / rate)
    }

    func recordCompletion(failed didFail: Bool, at time: UInt64) {
        completed.wrappingAdd(1, ordering: .relaxed)
        if didFail { failed.wrappingAdd(1, ordering: .relaxed) }
        var current = lastCompletion.load(ordering: .relaxed)
        while current < time {
            let (exchanged, original) = lastCompletion.compareExchange(expected: current, desired: time, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
    }
}

/// Monotonic time in nanoseconds, the clock NIO's timers use, so due times and loop timers agree.
enum Monotonic {
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(0, duration.nanoseconds))
    }
}
