import Codec
public import Domain

/// Enforces `RPCAccess.partner`: resolves the API key in `x-api-key` (or `authorization:
/// Bearer <key>`) to its customer and hands it on as `ServerContext.caller`.
///
/// A missing, malformed, unknown, revoked or expired key is UNAUTHENTICATED; an `x-customer-id`
/// naming another customer than the key's is PERMISSION_DENIED (valid credentials without the
/// right), as gRPC defines them.
public struct PartnerAuthentication: ServerInterceptor {
    let keys: ApiKeys

    public init(keys: ApiKeys) {
        self.keys = keys
    }

    public func applies(to method: RPCMethod) -> Bool { method.access == .partner }

    public func enforces(_ access: RPCAccess) -> Bool { access == .partner }

    public func intercept(_ context: inout ServerContext, method: RPCMethod) async throws {
        let presented = context.metadata["x-api-key"]
            ?? context.metadata["authorization"].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let presented, !presented.isEmpty else {
            throw RPCError(.unauthenticated, "this RPC needs a partner API key in x-api-key")
        }
        let key = try await keys.resolve(presented)
        if let claimed = context.metadata["x-customer-id"], claimed != key.customerID {
            throw RPCError(.permissionDenied, "x-customer-id does not match the API key's customer")
        }
        context.caller = .partner(customerID: key.customerID, keyID: key.keyID, ratePerMinute: key.ratePerMinute)
    }
}
