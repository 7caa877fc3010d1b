import Foundation

/// A webhook's HTTP answer and what it means for the message.
///
/// 2xx delivered; 429 throttles the destination for the body's `retry_after` (seconds) or
/// else the `Retry-After` header (delta-seconds; an HTTP date is not honoured and falls back
/// to the default pause); 408 and 5xx are passing trouble, retried; any other answer (a 4xx,
/// also 1xx/3xx, which a webhook has no reason to send) is refused for good.
struct WebhookReply: Hashable {
    var statusCode: Int
    /// The `Retry-After` header, if any.
    var retryAfterHeader: String?
    /// Nil when the body could not be read in time.
    var body: [UInt8]?

    var outcome: SinkOutcome {
        switch statusCode {
        case 200..<300:
            return .delivered
        case 429:
            return .throttled(retryAfter: bodyRetryAfter ?? headerRetryAfter)
        case 408, 500..<600:
            return .retryable(reason: "HTTP \(statusCode)")
        default:
            return .rejected(reason: "HTTP \(statusCode)")
        }
    }

    /// `{"retry_after": 2.5}`: seconds, a number (or a numeric string).
    private var bodyRetryAfter: Duration? {
        guard let body, let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        switch object["retry_after"] {
        case let number as NSNumber: return Self.seconds(number.doubleValue)
        case let text as String: return Double(text).flatMap(Self.seconds)
        default: return nil
        }
    }

    private var headerRetryAfter: Duration? {
        retryAfterHeader.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }.flatMap(Self.seconds)
    }

    /// Non-negative finite seconds, capped at a day so a typo cannot park a destination for years.
    private static func seconds(_ value: Double) -> Duration? {
        guard value.isFinite, value >= 0 else { return nil }
        return .milliseconds(Int64((min(value, 86_400) * 1000).rounded(.up)))
    }
}
