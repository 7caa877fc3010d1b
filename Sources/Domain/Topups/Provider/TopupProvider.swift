/// The mobile-operator side of a top-up, behind one small protocol: `SandboxProvider`
/// (in-process, deterministic) and `HTTPTopupProvider` (JSON over HTTP) implement it.
///
/// Tally's top-up id is sent as the provider-side idempotency reference. An outcome that may
/// or may not have charged (`ambiguous`) is resolved by asking `status(of:)` before any
/// retry, so a customer is never charged twice.
public protocol TopupProvider: Sendable {
    /// For logs and the attempts table, e.g. "sandbox", "http".
    var name: String { get }

    /// Charges once; never throws: every failure is an outcome.
    func charge(_ charge: ProviderCharge, timeout: Duration) async -> ProviderOutcome

    /// What the provider knows of `reference`; never throws.
    func status(of reference: String, timeout: Duration) async -> ProviderStatus

    /// Releases connections (HTTP client) at shutdown.
    func shutdown() async
}

/// One charge as sent to a provider.
public struct ProviderCharge: Sendable, Hashable {
    /// Tally's top-up id: the provider-side idempotency reference.
    public var reference: String
    /// E.164.
    public var phoneNumber: String
    public var amountMinorUnits: Int64
    /// ISO 4217.
    public var currency: String
    /// Empty when the partner gave none.
    public var carrier: String
    /// Which attempt of this top-up this is, from 1 (for the provider's logs and the sandbox).
    public var attempt: Int

    public init(reference: String, phoneNumber: String, amountMinorUnits: Int64, currency: String, carrier: String, attempt: Int = 1) {
        self.reference = reference
        self.phoneNumber = phoneNumber
        self.amountMinorUnits = amountMinorUnits
        self.currency = currency
        self.carrier = carrier
        self.attempt = attempt
    }
}

/// What one charge call came to.
public enum ProviderOutcome: Sendable, Hashable {
    /// Charged; the provider's own reference.
    case succeeded(providerReference: String)
    /// Refused for good (invalid number, barred line): the top-up fails without retries.
    case declined(reason: String)
    /// Certainly not charged (refused before processing: 503, connection refused): retry later.
    case retryable(reason: String)
    /// Maybe charged (timed out or reset after the request was sent): ask `status(of:)` first.
    case ambiguous(reason: String)
}

/// What the provider knows of one reference.
public enum ProviderStatus: Sendable, Hashable {
    /// Charged; the provider's own reference.
    case charged(providerReference: String)
    /// Declined for good.
    case declined(reason: String)
    /// Never charged: charging now is safe.
    case notFound
    /// The provider could not be asked (down, timed out): charging now is not safe.
    case unknown(reason: String)
}
