/// Who may call a method, as its service declares it; an interceptor enforces each kind.
public enum RPCAccess: Sendable, Hashable {
    /// Any caller (the client's own data is checked by the handler).
    case anyone
    /// Operators: the server's `ADMIN_KEY` in `x-admin-key` (or `authorization: Bearer`).
    case admin
    /// Partners' backends: an API key in `x-api-key` (or `authorization: Bearer`); the
    /// handler sees its customer in `ServerContext.caller`.
    case partner
    /// End users (mobile apps): a session token in `authorization: Bearer`; the handler sees
    /// its user in `ServerContext.caller` (anonymous when the server has no session secret).
    case endUser
}

/// Who the interceptors found the caller to be.
public enum Caller: Sendable, Hashable {
    /// Nobody checked (methods open to anyone).
    case anonymous
    case admin
    /// A partner's key: its customer, and the customer's top-up limit (nil: the server default).
    case partner(customerID: String, keyID: String, ratePerMinute: Int?)
    /// An end user's session token: its user.
    case endUser(userID: String)

    /// The partner's customer, nil for other callers.
    public var customerID: String? {
        if case .partner(let customer, _, _) = self { return customer }
        return nil
    }

    /// The end user a session token named, nil for other callers.
    public var endUserID: String? {
        if case .endUser(let user) = self { return user }
        return nil
    }
}

/// A rate limit a method declares; an interceptor enforces it after authentication.
public enum RPCRateLimit: Sendable, Hashable {
    /// Per partner customer, shared by every instance (top-ups).
    case perCustomer
}
