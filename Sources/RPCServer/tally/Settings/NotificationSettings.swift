import ArgumentParser
import Domain
import Foundation

/// Notifications: workers, limits, attempts and the sink.
struct NotificationSettings: ParsableArguments {
    @Option(help: "Notification sends at once per instance (env NOTIFY_CONCURRENCY, default 10).")
    var notifyConcurrency: Int?

    @Option(help: "Notifications per second to one destination, over all instances (env NOTIFY_RATE_PER_DESTINATION_PER_SEC, default 1).")
    var notifyRatePerDestinationPerSec: Double?

    @Option(help: "Notifications per second in all, over all instances (env NOTIFY_RATE_GLOBAL_PER_SEC, default 30).")
    var notifyRateGlobalPerSec: Double?

    @Option(help: "Sends of a notification before it is dead; 429 re-delays do not count (env NOTIFY_MAX_ATTEMPTS, default 5).")
    var notifyMaxAttempts: Int?

    @Option(help: "Sink: log (logs each message, counts it delivered) or webhook (env NOTIFY_SINK, default log, or webhook when NOTIFY_WEBHOOK_URL is set).")
    var notifySink: String?

    @Option(help: "The webhook's URL, e.g. http://127.0.0.1:9100/notify (env NOTIFY_WEBHOOK_URL).")
    var notifyWebhookUrl: String?

    @Option(help: "The HMAC-SHA256 key of X-Tally-Signature; required with the webhook sink (env NOTIFY_WEBHOOK_SECRET).")
    var notifyWebhookSecret: String?

    @Option(help: "Timeout of each webhook request, in ms (env NOTIFY_WEBHOOK_TIMEOUT_MS, default 5000).")
    var notifyWebhookTimeoutMs: Int?

    @Option(help: "How long ago a pending notification must have been queued (or recorded) for the sweeper to queue it again, in ms (env NOTIFY_SWEEP_AFTER_MS, default 30000).")
    var notifySweepAfterMs: Int?

    func configuration(_ env: Environment) throws -> NotificationsConfiguration {
        var notifications = NotificationsConfiguration.defaults
        notifications.workers = try env.int(notifyConcurrency, "NOTIFY_CONCURRENCY", default: notifications.workers, range: 1...10_000)
        notifications.ratePerDestinationPerSecond = try env.double(
            notifyRatePerDestinationPerSec, "NOTIFY_RATE_PER_DESTINATION_PER_SEC", default: notifications.ratePerDestinationPerSecond,
            range: 0.001...1_000_000)
        notifications.globalRatePerSecond = try env.double(
            notifyRateGlobalPerSec, "NOTIFY_RATE_GLOBAL_PER_SEC", default: notifications.globalRatePerSecond, range: 0.001...1_000_000)
        notifications.maxAttempts = try env.int(notifyMaxAttempts, "NOTIFY_MAX_ATTEMPTS", default: notifications.maxAttempts, range: 1...100)
        notifications.sweepAfter = try env.milliseconds(
            notifySweepAfterMs, "NOTIFY_SWEEP_AFTER_MS", default: notifications.sweepAfter, range: 100...86_400_000) ?? notifications.sweepAfter
        let timeout = try env.milliseconds(notifyWebhookTimeoutMs, "NOTIFY_WEBHOOK_TIMEOUT_MS", default: .seconds(5), range: 10...600_000)
            ?? .seconds(5)
        let url = env.string(notifyWebhookUrl, "NOTIFY_WEBHOOK_URL")
        switch env.string(notifySink, "NOTIFY_SINK") ?? (url == nil ? "log" : "webhook") {
        case "log":
            notifications.sink = .log
        case "webhook":
            guard let url else { throw SettingsError("NOTIFY_SINK=webhook needs NOTIFY_WEBHOOK_URL") }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw SettingsError("NOTIFY_WEBHOOK_URL must be an http(s) URL, got \"\(url)\"")
            }
            // No secret has a default: an unsigned webhook could be forged by anyone who finds it.
            guard let secret = env.string(notifyWebhookSecret, "NOTIFY_WEBHOOK_SECRET") else {
                throw SettingsError("the webhook sink needs NOTIFY_WEBHOOK_SECRET")
            }
            notifications.sink = .webhook(url: url, secret: secret, timeout: timeout)
        case let other:
            throw SettingsError("NOTIFY_SINK must be log or webhook, got \"\(other)\"")
        }
        return notifications
    }
}
