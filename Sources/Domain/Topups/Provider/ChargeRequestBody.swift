/// The JSON body of `POST /charges`: one `ProviderCharge` with the wire's snake_case names.
struct ChargeRequestBody: Encodable {
    var reference: String
    var phoneNumber: String
    var amountMinorUnits: Int64
    var currency: String
    var carrier: String
    /// Which attempt of the top-up this is, from 1 (for the provider's logs).
    var attempt: Int

    init(_ charge: ProviderCharge) {
        reference = charge.reference
        phoneNumber = charge.phoneNumber
        amountMinorUnits = charge.amountMinorUnits
        currency = charge.currency
        carrier = charge.carrier
        attempt = charge.attempt
    }

    enum CodingKeys: String, CodingKey {
        case reference
        case phoneNumber = "phone_number"
        case amountMinorUnits = "amount_minor_units"
        case currency
        case carrier
        case attempt
    }
}
