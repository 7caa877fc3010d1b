public import Storage

/// How top-ups are accepted, limited, processed and kept.
public struct TopupsConfiguration: Sendable {
    /// Top-ups per minute per customer unless the key says otherwise (`TOPUP_RATE_PER_MIN`).
    public var ratePerMinute: Int
    /// With Redis unreachable: a local share of the limit, or refusal (`TOPUP_LIMIT_WHEN_REDIS_DOWN`).
    public var limitWhenRedisDown: SlidingWindowLimiter.Fallback
    /// Idempotency keys are kept this long, then pruned (`TOPUP_IDEMPOTENCY_RETENTION_H`).
    public var idempotencyRetention: Duration
    public var rules: TopupRules
    /// Provider charges before a top-up fails for good (`TOPUP_MAX_ATTEMPTS`).
    public var maxAttempts: Int
    /// Retry delay after the n-th retryable failure: base * 2^(n-1), capped, +-20% jitter.
    public var retryBase: Duration
    public var retryMax: Duration
    /// Each provider call's timeout (`TOPUP_PROVIDER_TIMEOUT_MS`); a worker's lease on a
    /// top-up is twice this plus a margin, so a call has always ended when the lease passes.
    public var providerTimeout: Duration
    /// Provider calls at once per instance (`TOPUP_QUEUE_CONCURRENCY`).
    public var workers: Int
    /// How often the sweeper looks for top-ups whose job was lost, and how long a top-up must
    /// have been untouched to count (`TOPUP_SWEEP_AFTER_MS`).
    public var sweepInterval: Duration
    public var sweepAfter: Duration
    /// The in-process cache of resolved API keys (a missed revocation message is bounded by it).
    public var keyCacheTTL: Duration

    /// 200 a minute, local fallback, keys kept 72 h, 5 attempts from 500 ms doubling to 30 s,
    /// 5 s provider timeout, 20 workers, a sweep every 2 s for top-ups untouched for 10 s.
    public static var defaults: TopupsConfiguration {
        TopupsConfiguration(
            ratePerMinute: 200, limitWhenRedisDown: .local, idempotencyRetention: .seconds(72 * 3600), rules: .defaults,
            maxAttempts: 5, retryBase: .milliseconds(500), retryMax: .seconds(30), providerTimeout: .seconds(5), workers: 20,
            sweepInterval: .seconds(2), sweepAfter: .seconds(10), keyCacheTTL: .seconds(30))
    }

    public init(ratePerMinute: Int, limitWhenRedisDown: SlidingWindowLimiter.Fallback, idempotencyRetention: Duration, rules: TopupRules,
                maxAttempts: Int, retryBase: Duration, retryMax: Duration, providerTimeout: Duration, workers: Int,
                sweepInterval: Duration, sweepAfter: Duration, keyCacheTTL: Duration) {
        self.ratePerMinute = ratePerMinute
        self.limitWhenRedisDown = limitWhenRedisDown
        self.idempotencyRetention = idempotencyRetention
        self.rules = rules
        self.maxAttempts = maxAttempts
        self.retryBase = retryBase
        self.retryMax = retryMax
        self.providerTimeout = providerTimeout
        self.workers = workers
        self.sweepInterval = sweepInterval
        self.sweepAfter = sweepAfter
        self.keyCacheTTL = keyCacheTTL
    }

    /// How long a worker holds a claimed top-up.
    var lease: Duration { providerTimeout * 2 + .seconds(5) }

    /// The delay before retry number `attempt` (from 1), with jitter.
    func backoff(afterAttempt attempt: Int) -> Duration {
        let doubled = retryBase * (1 << min(max(0, attempt - 1), 20))
        let capped = min(doubled, retryMax)
        return capped * Double.random(in: 0.8...1.2)
    }
}
