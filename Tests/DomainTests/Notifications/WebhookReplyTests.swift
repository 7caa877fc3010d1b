import Testing

@testable import Domain

/// How a webhook's answer is read, without sockets: only 2xx delivers, 429 throttles for the
/// body's or the header's seconds, 408/5xx retry, other 4xx are final.
@Suite("Webhook replies")
struct WebhookReplyTests {
    static let cases: [(WebhookReply, SinkOutcome)] = [
        (WebhookReply(statusCode: 200, body: nil), .delivered),
        (WebhookReply(statusCode: 204, body: Array("garbage".utf8)), .delivered),
        (WebhookReply(statusCode: 429, body: Array(#"{"retry_after": 2}"#.utf8)), .throttled(retryAfter: .seconds(2))),
        (WebhookReply(statusCode: 429, body: Array(#"{"retry_after": 0.25}"#.utf8)), .throttled(retryAfter: .milliseconds(250))),
        // The body's field wins over the header.
        (WebhookReply(statusCode: 429, retryAfterHeader: "9", body: Array(#"{"retry_after": "3"}"#.utf8)), .throttled(retryAfter: .seconds(3))),
        (WebhookReply(statusCode: 429, retryAfterHeader: " 7 ", body: Array(#"{"error": "slow down"}"#.utf8)), .throttled(retryAfter: .seconds(7))),
        // An HTTP date is not honoured: the default pause applies.
        (WebhookReply(statusCode: 429, retryAfterHeader: "Wed, 21 Oct 2015 07:28:00 GMT", body: nil), .throttled(retryAfter: nil)),
        (WebhookReply(statusCode: 429, body: Array(#"{"retry_after": -1}"#.utf8)), .throttled(retryAfter: nil)),
        (WebhookReply(statusCode: 500, body: nil), .retryable(reason: "HTTP 500")),
        (WebhookReply(statusCode: 503, retryAfterHeader: "5", body: nil), .retryable(reason: "HTTP 503")),
        (WebhookReply(statusCode: 408, body: nil), .retryable(reason: "HTTP 408")),
        (WebhookReply(statusCode: 400, body: nil), .rejected(reason: "HTTP 400")),
        (WebhookReply(statusCode: 404, body: nil), .rejected(reason: "HTTP 404")),
        (WebhookReply(statusCode: 410, body: nil), .rejected(reason: "HTTP 410")),
        (WebhookReply(statusCode: 302, body: nil), .rejected(reason: "HTTP 302")),
    ]

    @Test("an answer's outcome", arguments: cases)
    func outcome(reply: WebhookReply, expected: SinkOutcome) {
        #expect(reply.outcome == expected)
    }
}
