import Testing

@testable import Domain

@Suite("API key text")
struct ApiKeySecretTests {
    @Test("a generated key parses back, has the prefix, 256 random bits and a distinct hash")
    func roundTrip() {
        let first = ApiKeySecret.generate(), second = ApiKeySecret.generate()
        #expect(first.text.hasPrefix("tly_live_") && first.text.utf8.count == ApiKeySecret.length)
        #expect(ApiKeySecret(parsing: first.text) == first)
        #expect(first != second && first.hash != second.hash && first.hash.count == 32)
        #expect(first.displayPrefix == String(first.text.prefix(13)))
    }

    @Test("a mistyped, truncated or foreign key is refused by its checksum or shape")
    func refused() {
        let key = ApiKeySecret.generate().text
        var typo = Array(key.utf8)
        typo[20] = typo[20] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        #expect(ApiKeySecret(parsing: String(decoding: typo, as: UTF8.self)) == nil)
        #expect(ApiKeySecret(parsing: key.dropLast()) == nil)
        #expect(ApiKeySecret(parsing: "tly_test_" + key.dropFirst(9)) == nil)
        #expect(ApiKeySecret(parsing: key.replacingOccurrences(of: "tly_live_", with: "tly_live-")) == nil)
        #expect(ApiKeySecret(parsing: "") == nil)
    }
}

@Suite("Top-up rules")
struct TopupRulesTests {
    let rules = TopupRules(amountBounds: ["EUR": 500...20_000], carriers: ["vodafone-de"])

    func order(key: String = "k", phone: String = "+4915112345678", minor: Int64 = 1500, currency: String = "EUR", carrier: String = "")
        -> TopupOrder {
        TopupOrder(idempotencyKey: key, phoneNumber: phone, amountMinorUnits: minor, currency: currency, carrier: carrier)
    }

    func problem(_ order: TopupOrder) -> String? {
        do {
            try rules.validate(order)
            return nil
        } catch {
            #expect(error.code == .invalidArgument)
            return error.message
        }
    }

    @Test("a valid order passes")
    func valid() {
        #expect(problem(order()) == nil)
        #expect(problem(order(carrier: "vodafone-de")) == nil)
        #expect(problem(order(minor: 100, currency: "JPY")) == nil)  // JPY has no minor unit: 100 yen
    }

    @Test("each bad field is named", arguments: [
        ("idempotency_key", "", "+4915112345678", Int64(1500), "EUR", ""),
        ("idempotency_key", String(repeating: "k", count: 256), "+4915112345678", 1500, "EUR", ""),
        ("idempotency_key", "tab\there", "+4915112345678", 1500, "EUR", ""),
        ("phone_number", "k", "004915112345678", 1500, "EUR", ""),
        ("phone_number", "k", "+1234567", 1500, "EUR", ""),
        ("phone_number", "k", "+49151123456789012", 1500, "EUR", ""),
        ("amount.currency", "k", "+4915112345678", 1500, "eur", ""),
        ("amount.currency", "k", "+4915112345678", 1500, "XAU", ""),
        ("amount.minor_units", "k", "+4915112345678", 499, "EUR", ""),
        ("amount.minor_units", "k", "+4915112345678", 20_001, "EUR", ""),
        ("amount.minor_units", "k", "+4915112345678", 99, "USD", ""),
        ("carrier", "k", "+4915112345678", 1500, "EUR", "telekom-de"),
    ])
    func named(field: String, key: String, phone: String, minor: Int64, currency: String, carrier: String) {
        let message = problem(order(key: key, phone: phone, minor: minor, currency: currency, carrier: carrier))
        #expect(message?.hasPrefix(field) == true, "\(message ?? "accepted")")
    }

    @Test("every bad field is named at once")
    func all() {
        let message = problem(order(key: "", phone: "123", minor: 1, currency: "EURO")) ?? ""
        #expect(message.contains("idempotency_key") && message.contains("phone_number") && message.contains("amount.currency"))
    }

    @Test("a reused key names exactly the fields that differ")
    func differences() {
        let topup = Topup(id: "tp", customerID: "c", idempotencyKey: "k", phoneNumber: "+4915112345678", amountMinorUnits: 1500,
                          currency: "EUR", carrier: "", state: .pending, failureReason: "", providerReference: "", attempts: 0,
                          createdAtMs: 0, updatedAtMs: 0)
        #expect(order().differences(from: topup).isEmpty)
        #expect(order(minor: 1600, carrier: "vodafone-de").differences(from: topup) == ["amount.minor_units", "carrier"])
        #expect(order(currency: "USD").differences(from: topup) == ["amount.currency"])
    }
}
