public import Foundation

/// A stored API key: everything but the key itself.
public struct ApiKeyRecord: Sendable, Hashable {
    /// `key_` and 16 hex digits.
    public var id: String
    public var customerID: String
    public var name: String
    /// Top-ups per minute for the customer; nil: the server's default.
    public var ratePerMinute: Int?
    /// The key's first characters.
    public var prefix: String
    public var createdAt: Date
    public var lastUsedAt: Date?
    public var revokedAt: Date?
    /// Set on the old key of a rotation with an overlap.
    public var expiresAt: Date?
}

/// What the auth interceptor learns from a valid key.
public struct ResolvedApiKey: Sendable, Hashable {
    public var keyID: String
    public var customerID: String
    public var ratePerMinute: Int?
    /// The key stops being valid then (rotation overlap); nil: until revoked.
    public var expiresAt: Date?
}
