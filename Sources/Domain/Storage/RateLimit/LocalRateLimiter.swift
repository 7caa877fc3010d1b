import Synchronization

/// GCRA in process memory: the fallback while Redis is unreachable.
///
/// Each instance enforces `limit / instances` (rounded up), so the fleet as a whole stays
/// near the global limit without talking to each other. Keys idle for a whole period are
/// forgotten, so memory stays bounded by the active keys.
final class LocalRateLimiter: Sendable {
    private struct Keys {
        var arrival: [String: ContinuousClock.Instant] = [:]
        var lastSweep = ContinuousClock.now
    }

    private let keys = Mutex(Keys())

    func decide(key: String, limit: RateLimit, cost: Int, now: ContinuousClock.Instant = .now) -> RateLimitDecision {
        let interval = limit.period / limit.limit
        return keys.withLock { state in
            if now - state.lastSweep > limit.period {
                state.arrival = state.arrival.filter { $0.value > now }
                state.lastSweep = now
            }
            let tat = max(state.arrival[key] ?? now, now)
            let newTAT = tat + interval * cost
            let allowAt = newTAT - limit.period
            if allowAt > now {
                let remaining = max(0, Int((now - (tat - limit.period)) / interval))
                return RateLimitDecision(allowed: false, remaining: remaining, retryAfter: allowAt - now, decidedLocally: true)
            }
            state.arrival[key] = newTAT
            return RateLimitDecision(allowed: true, remaining: Int((now - allowAt) / interval), retryAfter: .zero, decidedLocally: true)
        }
    }
}
