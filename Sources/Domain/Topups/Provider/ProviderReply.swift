/// A provider's HTTP answer, and what it means for a charge or a status question.
///
/// The rule behind the mapping: only an answer that says the charge was not processed (429,
/// 503, a decline) allows retrying or giving up; every other answer may come from a provider
/// that charged, so it is `ambiguous` and Tally asks `status(of:)` before doing anything else.
struct ProviderReply: Hashable {
    var statusCode: Int
    /// Nil when the body was not JSON of the expected shape, or could not be read in time.
    var body: ChargeReplyBody?

    /// The outcome of `POST /charges`.
    var chargeOutcome: ProviderOutcome {
        switch statusCode {
        case 200, 201:
            switch (body?.status, body?.providerReference) {
            case ("succeeded", let providerReference?): return .succeeded(providerReference: providerReference)
            case ("declined", _): return .declined(reason: body?.reason ?? "declined")
            default: return .ambiguous(reason: "HTTP \(statusCode) without a readable charge status")
            }
        // Rate-limited or unavailable: the provider refused the request before processing it.
        case 429, 503:
            return .retryable(reason: "HTTP \(statusCode)")
        // A request timeout may have been processed; a conflict on the idempotency key means a
        // charge with this reference is known or under way.
        case 408, 409:
            return .ambiguous(reason: "HTTP \(statusCode)")
        case 400..<500:
            return .declined(reason: body?.reason ?? "HTTP \(statusCode)")
        default:
            // 5xx, 202 (accepted, not yet done), redirects and the like.
            return .ambiguous(reason: "HTTP \(statusCode)")
        }
    }

    /// The answer to `GET /charges/{reference}`.
    var chargeStatus: ProviderStatus {
        switch statusCode {
        case 200:
            switch (body?.status, body?.providerReference) {
            case ("succeeded", let providerReference?): return .charged(providerReference: providerReference)
            case ("declined", _): return .declined(reason: body?.reason ?? "declined")
            default: return .unknown(reason: "HTTP 200 without a readable charge status")
            }
        case 404:
            return .notFound
        default:
            return .unknown(reason: "HTTP \(statusCode)")
        }
    }
}
