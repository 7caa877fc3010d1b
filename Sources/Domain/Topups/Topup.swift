/// A top-up as stored: Postgres' `topups` row.
public struct Topup: Sendable, Hashable {
    public enum State: String, Sendable, CaseIterable {
        case pending = "PENDING"
        case processing = "PROCESSING"
        case succeeded = "SUCCEEDED"
        case failed = "FAILED"

        /// SUCCEEDED and FAILED never change again.
        public var isFinal: Bool { self == .succeeded || self == .failed }
    }

    public var id: String
    public var customerID: String
    public var idempotencyKey: String
    public var phoneNumber: String
    public var amountMinorUnits: Int64
    public var currency: String
    public var carrier: String
    public var state: State
    public var failureReason: String
    public var providerReference: String
    public var attempts: Int
    public var createdAtMs: Int64
    public var updatedAtMs: Int64
}

/// What a partner asks for: the fields an idempotency key binds.
public struct TopupOrder: Sendable, Hashable {
    public var idempotencyKey: String
    public var phoneNumber: String
    public var amountMinorUnits: Int64
    public var currency: String
    public var carrier: String

    public init(idempotencyKey: String, phoneNumber: String, amountMinorUnits: Int64, currency: String, carrier: String) {
        self.idempotencyKey = idempotencyKey
        self.phoneNumber = phoneNumber
        self.amountMinorUnits = amountMinorUnits
        self.currency = currency
        self.carrier = carrier
    }

    /// The request fields in which `topup` differs from this order (a reused idempotency key).
    func differences(from topup: Topup) -> [String] {
        var fields: [String] = []
        if phoneNumber != topup.phoneNumber { fields.append("phone_number") }
        if amountMinorUnits != topup.amountMinorUnits { fields.append("amount.minor_units") }
        if currency != topup.currency { fields.append("amount.currency") }
        if carrier != topup.carrier { fields.append("carrier") }
        return fields
    }
}
