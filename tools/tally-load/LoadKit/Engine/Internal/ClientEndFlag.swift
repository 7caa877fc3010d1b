import Synchronization

/// Set when tally-load itself ended a stream (response limit reached, or the timed run's
/// end), so its CANCELLED status is counted as a success; shared with a loop timer.
final class ClientEndFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    func set() { flag.store(true, ordering: .relaxed) }

    var isSet: Bool { flag.load(ordering: .relaxed) }
}
