import Logging

/// Logs each message at info and counts it delivered: notifications work without a receiver.
struct LogSink: NotificationSink {
    let name = "log"
    let logger = Logger(label: "tally.notifications.sink")

    func deliver(_ message: NotificationMessage, attempt: Int) async -> SinkOutcome {
        logger.info("notification", metadata: [
            "id": "\(message.id)", "destination": "\(message.destination)", "kind": "\(message.kind)",
            "attempt": "\(attempt)", "body": "\(message.body)",
        ])
        return .delivered
    }

    func shutdown() async {}
}
