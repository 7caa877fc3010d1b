/// A step calls pass before their handler (authentication, rate limits, logging): it refuses a
/// call by throwing the status the client gets, or hands on the context with more in it.
///
/// The router gives each method only the interceptors that apply to it, so a method none
/// applies to (the benchmark's Echo, health) pays nothing for the layer. Interceptors see the
/// context and the method's declaration, never HTTP/2: they are tested without a socket.
public protocol ServerInterceptor: Sendable {
    /// Whether this interceptor has anything to do for calls of `method`.
    func applies(to method: RPCMethod) -> Bool

    /// Runs before the handler of a call of `method`.
    func intercept(_ context: inout ServerContext, method: RPCMethod) async throws

    /// Whether this interceptor is the one enforcing `access` (the router refuses to serve a
    /// restricted method nobody enforces).
    func enforces(_ access: RPCAccess) -> Bool

    /// Whether this interceptor is the one enforcing `limit`.
    func enforces(_ limit: RPCRateLimit) -> Bool
}

extension ServerInterceptor {
    public func enforces(_ access: RPCAccess) -> Bool { false }
    public func enforces(_ limit: RPCRateLimit) -> Bool { false }
}
