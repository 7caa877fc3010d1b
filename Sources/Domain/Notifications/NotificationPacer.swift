import Storage

/// Decides, before each send, whether the per-destination and the global limit let it go now,
/// for every instance at once.
///
/// Both limits are GCRA (`RateLimiter`) with a burst of one: one send per `1 s / rate`, the
/// interval rounded up to the microsecond, so sends are spaced evenly and no window of one
/// second ever holds more than `rate` of them (the global one at high rates keeps a second
/// slot in hand, see `global(perSecond:)`). The sliding-window log (`SlidingWindowLimiter`)
/// is exact too, but it lets `rate` sends through at once and then none until the window
/// slides: the sink sees bursts, and the jitter of a burst's arrivals puts more than `rate` of
/// them into some one-second window on the sink's clock. Spaced slots keep the sink's load flat;
/// GCRA also keeps one hash field per key, not a sorted-set entry per send, for any number of
/// destinations, and a slot can be handed back.
///
/// A slot nobody takes at its instant is lost, so waiting must be prompt: the workers of an
/// instance take turns (`Turnstile`), and only the one whose turn it is asks and sleeps until
/// the global retry-after, so a slot frees with one asker per instance ready instead of a herd
/// of every worker hammering Redis, and its ask costs one round trip (one AOF fsync with
/// `appendfsync always`), not a chain of them.
///
/// Both limits are asked together. A refusal by the destination (the one that says no for
/// long, a second) puts the message back in the queue for its retry-after. If only the global
/// limit refuses, the destination's slot is handed back (a cost of -1) before sleeping,
/// so a message waiting for the global limit holds back no other message to its destination
/// and its send, when it comes, is spaced from the previous one. The hand-back follows the
/// taking by one round trip, far inside the destination's interval at per-user rates (a
/// second at the default), so no other send to it can have been allowed in between; at rates
/// of hundreds a second per destination the two could cross, and a window hold one send more.
///
/// A refusal by the global limit is waited out in process, up to `holdLimit`: putting the
/// message back in the queue would add a round trip and a poll interval to every wait, slots
/// the global limit had room for.
struct NotificationPacer: Sendable {
    let limiter: RateLimiter
    let perDestination: RateLimit
    let global: RateLimit
    let holdLimit: Duration
    private let turns = Turnstile()
    static let globalKey = "global"

    init(limiter: RateLimiter, perDestinationPerSecond: Double, globalPerSecond: Double, holdLimit: Duration) {
        self.limiter = limiter
        self.perDestination = Self.spaced(perSecond: perDestinationPerSecond)
        self.global = Self.global(perSecond: globalPerSecond)
        self.holdLimit = holdLimit
    }

    /// One request per interval, the interval rounded up to the microsecond so `rate` sends
    /// never fit in one second.
    static func spaced(perSecond rate: Double) -> RateLimit {
        let micros = (1_000_000 / max(rate, 0.000_001)).rounded(.up)
        return RateLimit(limit: 1, period: .microseconds(Int64(min(micros, 86_400_000_000))))
    }

    /// The global limit: spaced like `spaced`, except that from `burstFrom` sends a second up
    /// it keeps a second slot in hand (a burst of two at one send per `1 s / (rate - 1)`), so a
    /// slot taken up to one interval late is not lost. A burst of two plus `rate - 2` spaced
    /// sends still never fit more than `rate` into one second; it costs one send a second of
    /// the limit, less than lateness costs at such rates (a Redis write, an AOF fsync with
    /// `appendfsync always`, is milliseconds, which `rate` slots a second each lose).
    static func global(perSecond rate: Double) -> RateLimit {
        guard rate >= burstFrom else { return spaced(perSecond: rate) }
        let micros = (1_000_000 / (rate.rounded(.down) - 1)).rounded(.up)
        return RateLimit(limit: 2, period: .microseconds(2 * Int64(micros)))
    }

    /// Where a second slot in hand costs less than lateness (a few milliseconds per slot).
    static let burstFrom = 20.0

    /// Nil when the message may be sent now (both limits counted it); else how long to put it
    /// back for.
    func admit(destination: String) async -> Duration? {
        let destinationKey = "d:" + destination
        let holdUntil = ContinuousClock.now + holdLimit
        await turns.enter()
        defer { turns.leave() }
        while true {
            // Cancelled while waiting for the turn (shutting down): take no slot; the worker
            // releases the job.
            guard !Task.isCancelled else { return .milliseconds(1) }
            // Both at once: they reach Redis in one turn of its event loop and share one AOF
            // fsync, where one after the other would make the slot wait for two.
            async let destinationDecision = limiter.decide(key: destinationKey, limit: perDestination)
            let all = await limiter.decide(key: Self.globalKey, limit: global)
            let mine = await destinationDecision
            // A global slot taken meanwhile goes unused: handing it back could land after the
            // next one was granted. It happens when a slot was free anyway, or when another
            // instance sent to this destination during the wait.
            guard mine.allowed else { return max(mine.retryAfter, .milliseconds(1)) }
            if all.allowed { return nil }
            _ = await limiter.decide(key: destinationKey, limit: perDestination, cost: -1)
            let wait = max(all.retryAfter, .microseconds(100))
            guard ContinuousClock.now + wait <= holdUntil else { return wait }
            try? await Task.sleep(for: wait)
        }
    }
}
