import Codec

/// Enforces `RPCAccess.endUser`: a session token (`SessionTokens`) in `authorization: Bearer
/// <token>` names the user, handed on as `Caller.endUser(userID:)`.
///
/// Without a session secret (development) calls pass as anonymous and the service trusts what
/// the client says it is; with one, a missing, malformed, wrongly signed or expired token is
/// UNAUTHENTICATED.
public struct EndUserAuthentication: ServerInterceptor {
    let tokens: SessionTokens?

    public init(tokens: SessionTokens?) {
        self.tokens = tokens
    }

    public func applies(to method: RPCMethod) -> Bool { method.access == .endUser }

    public func enforces(_ access: RPCAccess) -> Bool { access == .endUser }

    public func intercept(_ context: inout ServerContext, method: RPCMethod) async throws {
        guard let tokens else { return }
        guard let header = context.metadata["authorization"], header.hasPrefix("Bearer ") else {
            throw RPCError(.unauthenticated, "this RPC needs a session token in authorization: Bearer <token>")
        }
        guard let user = await tokens.user(of: String(header.dropFirst(7))) else {
            throw RPCError(.unauthenticated, "the session token is not valid (malformed, wrongly signed or expired)")
        }
        context.caller = .endUser(userID: user)
    }
}
