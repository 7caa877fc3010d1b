import Synchronization

/// The instance's one timer for every presence stream: outboxes whose changes wait for their
/// interval are looked at each tick (no task or timer per stream).
final class PresenceTicker: Sendable {
    private let due = Mutex<[ObjectIdentifier: PresenceOutbox]>([:])

    /// `outbox` has changes that are not due yet.
    func schedule(_ outbox: PresenceOutbox) {
        due.withLock { $0[ObjectIdentifier(outbox)] = outbox }
    }

    /// Sends what became due; ends streams whose client stopped reading.
    func flush(_ now: ContinuousClock.Instant = .now) {
        var stalled: [PresenceOutbox] = []
        due.withLock { due in
            for (id, outbox) in due {
                switch outbox.tick(now) {
                case .waiting: break
                case .idle: due[id] = nil
                case .stalled:
                    due[id] = nil
                    stalled.append(outbox)
                }
            }
        }
        for outbox in stalled { outbox.stall() }
    }

    /// Outboxes waiting (stats, tests).
    var waiting: Int { due.withLock { $0.count } }
}
