import Codec
import Foundation

/// Enforces `RPCAccess.admin`: the caller sends the server's `ADMIN_KEY` in `x-admin-key` (or
/// `authorization: Bearer <key>`).
///
/// Without a configured key admin methods are refused with FAILED_PRECONDITION (there is no
/// default secret); a missing or wrong key is UNAUTHENTICATED, as gRPC defines it.
public struct AdminAuthentication: ServerInterceptor {
    let key: [UInt8]?

    public init(key: String?) {
        self.key = key.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
    }

    public func applies(to method: RPCMethod) -> Bool { method.access == .admin }

    public func enforces(_ access: RPCAccess) -> Bool { access == .admin }

    public func intercept(_ context: inout ServerContext, method: RPCMethod) throws {
        guard let key else {
            throw RPCError(.failedPrecondition, "admin RPCs are disabled: the server has no ADMIN_KEY")
        }
        let presented = context.metadata["x-admin-key"]
            ?? context.metadata["authorization"].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let presented else {
            throw RPCError(.unauthenticated, "this RPC needs the admin key in x-admin-key")
        }
        guard Self.constantTimeEqual(Array(presented.utf8), key) else {
            throw RPCError(.unauthenticated, "the admin key is not valid")
        }
        context.caller = .admin
    }

    /// Compares without an early exit, so timing does not reveal how much of a guess matched.
    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
