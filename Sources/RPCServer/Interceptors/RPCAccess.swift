/// Who may call a method, as its service declares it; an interceptor enforces each kind.
public enum RPCAccess: Sendable, Hashable {
    /// Any caller (the client's own data is checked by the handler).
    case anyone
    /// Operators: the server's `ADMIN_KEY` in `x-admin-key` (or `authorization: Bearer`).
    case admin
}
