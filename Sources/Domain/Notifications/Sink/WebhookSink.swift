import AsyncHTTPClient
import Foundation
import NIOCore
import Units

/// POSTs each notification as signed JSON to one URL (see `WebhookPayload`, `WebhookSignature`,
/// `WebhookReply` for the body, the signature and how answers are read).
///
/// Headers: `Content-Type: application/json`, `X-Tally-Notification-Id: <id>` (the receiver
/// deduplicates on it: delivery is at least once), `X-Tally-Signature: sha256=<hex>`.
/// Every send ends within `timeout`, response body included; no answer in time, or no
/// connection, is a retryable failure.
final class WebhookSink: NotificationSink {
    let name = "webhook"

    /// A webhook's answer is a status and at most a small JSON object.
    static let maxReplyBytes = 16 * 1024

    private let url: String
    private let secret: String
    private let timeout: Duration
    private let client: HTTPClient

    init(url: String, secret: String, timeout: Duration, eventLoopGroup: any EventLoopGroup) {
        self.url = url
        self.secret = secret
        self.timeout = timeout
        var configuration = HTTPClient.Configuration()
        // A redirected POST would turn into a GET or leave for another host unsigned-for.
        configuration.redirectConfiguration = .disallow
        // Retrying is the queue's job (with backoff), not the pool's until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .nanoseconds(min(timeout, .seconds(2)).nanoseconds)
        client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }

    func deliver(_ message: NotificationMessage, attempt: Int) async -> SinkOutcome {
        let body = WebhookPayload.bytes(of: message, attempt: attempt, sentAt: Date())
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Tally-Notification-Id", value: message.id)
        request.headers.add(name: WebhookSignature.header, value: WebhookSignature.value(of: body, secret: secret))
        request.body = .bytes(ByteBuffer(bytes: body))

        let deadline = ContinuousClock.now + timeout
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
        } catch {
            return .retryable(reason: "\(error)")
        }
        let reply = WebhookReply(
            statusCode: Int(response.status.code), retryAfterHeader: response.headers.first(name: "Retry-After"),
            body: await response.body.collect(upTo: Self.maxReplyBytes, until: deadline).map { Array($0.readableBytesView) })
        return reply.outcome
    }

    func shutdown() async {
        // Fails only when already shut down.
        try? await client.shutdown()
    }
}
