import Foundation
import JWTKit

/// End users' signed session tokens: JWTs, HS256 with the server's session secret, the user id
/// in `sub`, expiry in `exp` (required).
public struct SessionTokens: Sendable {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }

    private let keys: JWTKeyCollection

    public init(secret: String) async {
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    }

    /// A token for `user`, valid for `lifetime` (`tally token`, tests).
    public func mint(user: String, lifetime: Duration) async throws -> String {
        let seconds = Double(lifetime.components.seconds) + Double(lifetime.components.attoseconds) / 1e18
        return try await keys.sign(Claims(sub: SubjectClaim(value: user), exp: ExpirationClaim(value: Date() + seconds)))
    }

    /// The user a valid, unexpired token names; nil for anything else (malformed, another
    /// key or algorithm, expired, no subject).
    public func user(of token: String) async -> String? {
        guard let claims = try? await keys.verify(token, as: Claims.self), !claims.sub.value.isEmpty else { return nil }
        return claims.sub.value
    }
}
