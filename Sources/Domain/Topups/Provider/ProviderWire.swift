import Foundation

/// The JSON an HTTP provider speaks (see `HTTPTopupProvider`).
struct ChargeRequestBody: Encodable {
    var reference: String
    var phone_number: String
    var amount_minor_units: Int64
    var currency: String
    var carrier: String
    var attempt: Int
}

/// A charge's or a status query's answer.
struct ChargeAnswerBody: Decodable {
    /// "succeeded" or "declined".
    var status: String
    var provider_reference: String?
    var reason: String?
}
