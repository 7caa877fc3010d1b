import ArgumentParser
import Domain
import Foundation
import Storage

/// Top-ups: the per-customer limit, idempotency retention, validation, the provider and its
/// queue.
struct TopupSettings: ParsableArguments {
    @Option(help: "Top-ups per minute per customer unless its key says otherwise (env TOPUP_RATE_PER_MIN, default 200).")
    var topupRatePerMin: Int?

    @Option(help: "With Redis unreachable: local (limit / TALLY_INSTANCE_COUNT per instance) or refuse (env TOPUP_LIMIT_WHEN_REDIS_DOWN, default local).")
    var topupLimitWhenRedisDown: String?

    @Option(help: "Hours idempotency keys are kept, at least 24 (env TOPUP_IDEMPOTENCY_RETENTION_H, default 72).")
    var topupIdempotencyRetentionH: Int?

    @Option(help: "Provider charges before a top-up fails (env TOPUP_MAX_ATTEMPTS, default 5).")
    var topupMaxAttempts: Int?

    @Option(help: "First retry delay after a retryable provider error, doubling, in ms (env TOPUP_RETRY_BASE_MS, default 500).")
    var topupRetryBaseMs: Int?

    @Option(help: "Longest retry delay, in ms (env TOPUP_RETRY_MAX_MS, default 30000).")
    var topupRetryMaxMs: Int?

    @Option(help: "Timeout of each provider call, in ms (env TOPUP_PROVIDER_TIMEOUT_MS, default 5000).")
    var topupProviderTimeoutMs: Int?

    @Option(help: "Provider calls at once per instance (env TOPUP_QUEUE_CONCURRENCY, else QUEUE_CONCURRENCY when set, else 20).")
    var topupQueueConcurrency: Int?

    @Option(help: "How long an unfinished top-up must be untouched before the sweeper queues it again, in ms (env TOPUP_SWEEP_AFTER_MS, default 10000).")
    var topupSweepAfterMs: Int?

    @Option(help: "Provider adapter: sandbox (in-process, outcomes by number) or http (env TOPUP_PROVIDER, default sandbox).")
    var topupProvider: String?

    @Option(help: "The http provider's base URL, e.g. http://127.0.0.1:9000 (env TOPUP_PROVIDER_URL).")
    var topupProviderUrl: String?

    @Option(help: "The sandbox provider's latency per charge, in ms (env TOPUP_SANDBOX_LATENCY_MS, default 20).")
    var topupSandboxLatencyMs: Int?

    @Option(help: "Amount bounds in minor units per currency, e.g. EUR=100..50000,JPY=100..100000; others: 1 to 1000 major units (env TOPUP_AMOUNT_BOUNDS).")
    var topupAmountBounds: String?

    @Option(help: "Carrier hints accepted, comma-separated; * accepts any well-formed one (env TOPUP_CARRIERS, default a built-in list).")
    var topupCarriers: String?

    /// `queueConcurrency`: the shared QUEUE_CONCURRENCY as ProductSettings read it (0: not set).
    func configuration(_ env: Environment, queueConcurrency shared: Int) throws -> (topups: TopupsConfiguration, provider: ProviderChoice) {
        var topups = TopupsConfiguration.defaults
        topups.ratePerMinute = try env.int(topupRatePerMin, "TOPUP_RATE_PER_MIN", default: topups.ratePerMinute, range: 1...1_000_000)
        let fallback = env.string(topupLimitWhenRedisDown, "TOPUP_LIMIT_WHEN_REDIS_DOWN") ?? "local"
        guard let mode = SlidingWindowLimiter.Fallback(rawValue: fallback) else {
            throw SettingsError("TOPUP_LIMIT_WHEN_REDIS_DOWN must be local or refuse, got \"\(fallback)\"")
        }
        topups.limitWhenRedisDown = mode
        topups.idempotencyRetention = .seconds(3600 * (try env.int(
            topupIdempotencyRetentionH, "TOPUP_IDEMPOTENCY_RETENTION_H", default: 72, range: 24...87_600)))
        topups.maxAttempts = try env.int(topupMaxAttempts, "TOPUP_MAX_ATTEMPTS", default: topups.maxAttempts, range: 1...100)
        topups.retryBase = try env.milliseconds(topupRetryBaseMs, "TOPUP_RETRY_BASE_MS", default: topups.retryBase, range: 1...3_600_000)
            ?? topups.retryBase
        topups.retryMax = try env.milliseconds(topupRetryMaxMs, "TOPUP_RETRY_MAX_MS", default: topups.retryMax, range: 1...86_400_000)
            ?? topups.retryMax
        topups.providerTimeout = try env.milliseconds(
            topupProviderTimeoutMs, "TOPUP_PROVIDER_TIMEOUT_MS", default: topups.providerTimeout, range: 10...600_000) ?? topups.providerTimeout
        topups.workers = try env.int(
            topupQueueConcurrency, "TOPUP_QUEUE_CONCURRENCY", default: shared == 0 ? topups.workers : shared, range: 1...10_000)
        topups.sweepAfter = try env.milliseconds(topupSweepAfterMs, "TOPUP_SWEEP_AFTER_MS", default: topups.sweepAfter, range: 100...86_400_000)
            ?? topups.sweepAfter
        topups.rules.amountBounds = try Self.bounds(env.string(topupAmountBounds, "TOPUP_AMOUNT_BOUNDS") ?? "")
        if let carriers = env.string(topupCarriers, "TOPUP_CARRIERS") {
            topups.rules.carriers = carriers == "*" ? [] : Set(carriers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }

        let latency = try env.int(topupSandboxLatencyMs, "TOPUP_SANDBOX_LATENCY_MS", default: 20, range: 0...60_000)
        let provider: ProviderChoice
        switch env.string(topupProvider, "TOPUP_PROVIDER") ?? "sandbox" {
        case "sandbox":
            provider = .sandbox(latency: .milliseconds(latency))
        case "http":
            guard let url = env.string(topupProviderUrl, "TOPUP_PROVIDER_URL") else {
                throw SettingsError("TOPUP_PROVIDER=http needs TOPUP_PROVIDER_URL")
            }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw SettingsError("TOPUP_PROVIDER_URL must be an http(s) URL, got \"\(url)\"")
            }
            provider = .http(baseURL: url)
        case let other:
            throw SettingsError("TOPUP_PROVIDER must be sandbox or http, got \"\(other)\"")
        }
        return (topups, provider)
    }

    /// `EUR=100..50000,USD=100..50000`.
    static func bounds(_ text: String) throws -> [String: ClosedRange<Int64>] {
        var bounds: [String: ClosedRange<Int64>] = [:]
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=")
            let range = parts.count == 2 ? parts[1].split(separator: ".", omittingEmptySubsequences: true) : []
            guard parts.count == 2, Currency(code: String(parts[0])) != nil, range.count == 2,
                  let low = Int64(range[0]), let high = Int64(range[1]), low >= 1, low <= high else {
                throw SettingsError("TOPUP_AMOUNT_BOUNDS entries are CURRENCY=MIN..MAX in minor units (e.g. EUR=100..50000), got \"\(entry)\"")
            }
            bounds[String(parts[0])] = low...high
        }
        return bounds
    }
}
