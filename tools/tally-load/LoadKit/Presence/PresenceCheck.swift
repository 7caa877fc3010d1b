/// The lost-change check of a presence load: once the changes have stopped and two intervals
/// have passed, every subscriber's last received state of each user it watches must be the
/// last state that user sent (its `Hello`'s ONLINE when it sent no change). Coalescing may skip
/// intermediate states, never the last one.
public struct PresenceCheck: Sendable, Hashable {
    /// (subscriber, user) pairs compared, and those that differed.
    public var checked = 0
    public var lost = 0
    /// Pairs not compared: the user is another process' (its sends are unknown here) or one of
    /// the two streams had ended.
    public var unchecked = 0
    /// The first difference found, for the report.
    public var sample: String?

    public init() {}

    /// Compares what `subscriber` last received of each user it watches with `lastSent(user)`,
    /// nil when that user's sends are unknown here.
    public mutating func check(
        subscriber: Int, watching: [Int], received: [Int: PresenceMark], lastSent: (Int) -> PresenceMark?
    ) {
        for user in watching {
            guard let sent = lastSent(user) else {
                unchecked += 1
                continue
            }
            checked += 1
            let got = received[user]
            if got != sent {
                lost += 1
                if sample == nil {
                    sample = "user-\(subscriber) last received \(got.map(\.description) ?? "nothing") of user-\(user), which last sent \(sent)"
                }
            }
        }
    }

    /// Pairs of a subscriber whose own stream ended count as unchecked.
    public mutating func skip(_ pairs: Int) { unchecked += pairs }

    public mutating func merge(_ other: PresenceCheck) {
        checked += other.checked
        lost += other.lost
        unchecked += other.unchecked
        sample = sample ?? other.sample
    }
}
