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
    /// queue), `tally_notification_paused_destinations`, into the registry.
    func refreshNotificationMetrics(_ stats: Tally_V1_NotificationStatsResponse) {
        let pulled = sources.metrics.pulled
        pulled.gauge("tally_notifications", Double(stats.pending), [("status", "pending")])
        pulled.gauge("tally_notifications", Double(stats.delivered), [("status", "delivered")])
        pulled.gauge("tally_notifications", Double(stats.dead), [("status", "dead")])
        pulled.gauge("tally_notification_jobs", Double(stats.waiting), [("state", "waiting")])
        pulled.gauge("tally_notification_jobs", Double(stats.delayed), [("state", "delayed")])
        pulled.gauge("tally_notification_jobs", Double(stats.inFlight), [("state", "in_flight")])
        pulled.gauge("tally_notification_paused_destinations", Double(stats.pausedDestinations))
    }
}
