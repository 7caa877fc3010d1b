import Synchronization

/// The run's shared state between the coordinator, the drivers and the streams: how many
/// streams are open, when changes are sent, when to stop. Lock-free.
final class PresenceControl: Sendable {
    /// Streams whose Subscribe the server answered, and streams that ended (or never opened).
    let ready = Atomic<Int>(0)
    let ended = Atomic<Int>(0)
    /// Streams that are ready or ended without ever being ready: the opening is over at all.
    let settled = Atomic<Int>(0)
    /// Monotonic ns; 0 until the coordinator starts the changes.
    private let changesStart = Atomic<UInt64>(0)
    private let changesEnd = Atomic<UInt64>(0)
    private let stopped = Atomic<Bool>(false)

    /// Changes go out from `start` until `end` (monotonic ns).
    func startChanges(at start: UInt64, until end: UInt64) {
        changesEnd.store(end, ordering: .relaxed)
        changesStart.store(start, ordering: .releasing)
    }

    /// The window of changes once started.
    var changeWindow: (start: UInt64, end: UInt64)? {
        let start = changesStart.load(ordering: .acquiring)
        return start == 0 ? nil : (start, changesEnd.load(ordering: .relaxed))
    }

    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
