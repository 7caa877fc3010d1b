import Codec
import Foundation

/// The `ADMIN_KEY` check of admin and internal RPCs: the caller sends `x-admin-key: <key>`
/// (or `authorization: Bearer <key>`).
///
/// Without a configured key these RPCs are refused (there is no default secret).
public struct AdminKey: Sendable {
    let key: String?

    public init(_ key: String?) {
        self.key = key.flatMap { $0.isEmpty ? nil : $0 }
    }

    func check(_ context: ServerContext) throws(RPCError) {
        guard let key else {
            throw RPCError(.failedPrecondition, "admin RPCs are disabled: the server has no ADMIN_KEY")
        }
        let presented = context.metadata["x-admin-key"]
            ?? context.metadata["authorization"].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let presented else {
            throw RPCError(.unauthenticated, "this RPC needs the admin key in x-admin-key")
        }
        guard Self.constantTimeEqual(Array(presented.utf8), Array(key.utf8)) else {
            throw RPCError(.permissionDenied, "the admin key is not valid")
        }
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
