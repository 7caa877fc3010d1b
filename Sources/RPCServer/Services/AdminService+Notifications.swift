import Codec
import Domain

/// Notification statistics: the queue and the outbox.
extension AdminService {
    var notificationMethods: [RPCMethod] {
        guard let notifications = sources.notifications else { return [] }
        return [
            .unary(Self.path("NotificationStats"), access: .admin) { (_: Tally_V1_NotificationStatsRequest, _: ServerContext) in
                try await Self.notificationStats(notifications)
            },
        ]
    }

    static func notificationStats(_ notifications: Notifications) async throws -> Tally_V1_NotificationStatsResponse {
        let statistics = try await notifications.statistics
        var response = Tally_V1_NotificationStatsResponse()
        response.waiting = Int64(statistics.waiting)
        response.delayed = Int64(statistics.delayed)
        response.inFlight = Int64(statistics.inFlight)
        response.pending = statistics.pending
        response.delivered = statistics.delivered
        response.dead = statistics.dead
        response.failedAttempts = Int64(statistics.failedAttempts)
        response.deadLettered = Int64(statistics.deadLettered)
        response.pausedDestinations = Int64(statistics.pausedDestinations)
        response.deliveredPerSecond = statistics.deliveredPerSecond
        response.ratePerDestination = notifications.configuration.ratePerDestinationPerSecond
        response.rateGlobal = notifications.configuration.globalRatePerSecond
        response.sink = notifications.configuration.sink.name
        return response
    }

    /// `tally_notifications{status}` (outbox rows), `tally_notification_jobs{state}` (the
    /// queue), `tally_notification_paused_destinations`.
    static func notificationMetrics(_ stats: Tally_V1_NotificationStatsResponse) -> [Tally_V1_Metric] {
        func metric(_ name: String, _ value: Int64, _ labels: [String: String] = [:]) -> Tally_V1_Metric {
            var metric = Tally_V1_Metric()
            metric.name = name
            metric.value = Double(value)
            metric.labels = labels
            return metric
        }
        return [
            metric("tally_notifications", stats.pending, ["status": "pending"]),
            metric("tally_notifications", stats.delivered, ["status": "delivered"]),
            metric("tally_notifications", stats.dead, ["status": "dead"]),
            metric("tally_notification_jobs", stats.waiting, ["state": "waiting"]),
            metric("tally_notification_jobs", stats.delayed, ["state": "delayed"]),
            metric("tally_notification_jobs", stats.inFlight, ["state": "in_flight"]),
            metric("tally_notification_paused_destinations", stats.pausedDestinations),
        ]
    }
}
