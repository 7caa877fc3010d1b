internal import Foundation

/// What a provider's JSON says of one charge, in answer to `POST /charges` and
/// `GET /charges/{reference}`: `{"status": "succeeded", "provider_reference": "..."}` or
/// `{"status": "declined", "reason": "..."}`.
///
/// Every field is optional so that error bodies (a 4xx with only a `reason`) still decode;
/// `ProviderReply` decides what a reply without the fields it needs means.
struct ChargeReplyBody: Decodable, Hashable {
    var status: String?
    var providerReference: String?
    var reason: String?

    enum CodingKeys: String, CodingKey {
        case status
        case providerReference = "provider_reference"
        case reason
    }

    /// The body decoded, or nil when it is empty or not such a JSON object.
    init?(json: Data) {
        guard let body = try? JSONDecoder().decode(Self.self, from: json) else { return nil }
        self = body
    }

    init(status: String?, providerReference: String? = nil, reason: String? = nil) {
        self.status = status
        self.providerReference = providerReference
        self.reason = reason
    }
}
