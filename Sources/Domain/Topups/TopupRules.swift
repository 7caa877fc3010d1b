public import Codec

/// What a top-up order must satisfy: the idempotency key, an E.164 number, an ISO 4217
/// currency with an amount within its bounds, a known carrier when one is given.
public struct TopupRules: Sendable, Hashable {
    /// Allowed amounts per currency in minor units; a currency not listed gets
    /// `defaultBounds(for:)`.
    public var amountBounds: [String: ClosedRange<Int64>]
    /// Carrier hints accepted; empty accepts any well-formed one.
    public var carriers: Set<String>

    public static let defaultCarriers: Set<String> = [
        "vodafone-de", "telekom-de", "o2-de", "orange-fr", "sfr-fr", "bouygues-fr", "vodafone-uk", "ee-uk", "three-uk",
        "att-us", "verizon-us", "tmobile-us", "movistar-es", "vodafone-es", "tim-it", "vodafone-it", "airtel-in", "jio-in",
        "mtn-ng", "airtel-ng", "safaricom-ke", "claro-br", "vivo-br", "telcel-mx", "turkcell-tr", "globe-ph", "smart-ph",
    ]

    public static var defaults: TopupRules { TopupRules(amountBounds: [:], carriers: defaultCarriers) }

    public init(amountBounds: [String: ClosedRange<Int64>], carriers: Set<String>) {
        self.amountBounds = amountBounds
        self.carriers = carriers
    }

    /// 1 to 1,000 major units (100 to 100,000 cents for EUR, 1 to 1,000 yen).
    public static func defaultBounds(for currency: Currency) -> ClosedRange<Int64> {
        let unit = currency.minorUnitsPerMajor
        return unit...(1000 * unit)
    }

    /// INVALID_ARGUMENT naming every field that is wrong.
    public func validate(_ order: TopupOrder) throws(RPCError) {
        var problems: [String] = []
        let key = order.idempotencyKey.utf8
        if key.isEmpty {
            problems.append("idempotency_key: required (1-255 printable characters; the same key makes a retry safe)")
        } else if key.count > 255 || !key.allSatisfy({ (0x20...0x7e).contains($0) }) {
            problems.append("idempotency_key: 1-255 printable ASCII characters")
        }
        if !Self.isE164(order.phoneNumber) {
            problems.append("phone_number: must be E.164, a + and 8 to 15 digits, the first not 0 (e.g. +4915112345678)")
        }
        if let currency = Currency(code: order.currency) {
            let bounds = amountBounds[currency.code] ?? Self.defaultBounds(for: currency)
            if !bounds.contains(order.amountMinorUnits) {
                problems.append("amount.minor_units: \(order.amountMinorUnits) is outside \(bounds.lowerBound)...\(bounds.upperBound) for \(currency.code)")
            }
        } else {
            problems.append("amount.currency: \"\(order.currency.prefix(8))\" is not an ISO 4217 code (upper case, e.g. EUR)")
        }
        if !order.carrier.isEmpty && !(carriers.isEmpty ? Self.isWellFormedCarrier(order.carrier) : carriers.contains(order.carrier)) {
            problems.append("carrier: \"\(order.carrier.prefix(64))\" is not a known carrier (leave it empty to let Tally detect it)")
        }
        if !problems.isEmpty { throw RPCError(.invalidArgument, problems.joined(separator: "; ")) }
    }

    static func isE164(_ number: String) -> Bool {
        let bytes = Array(number.utf8)
        guard bytes.count >= 9, bytes.count <= 16, bytes[0] == UInt8(ascii: "+"), bytes[1] != UInt8(ascii: "0") else { return false }
        return bytes.dropFirst().allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    static func isWellFormedCarrier(_ carrier: String) -> Bool {
        carrier.utf8.count <= 64 && carrier.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
    }
}
