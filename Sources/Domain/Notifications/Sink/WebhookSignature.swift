import Crypto

/// `X-Tally-Signature`: `sha256=` and the lowercase hex HMAC-SHA256 of the request body's
/// exact bytes under the shared secret, so a receiver can tell Tally's requests from forged
/// ones (and compare in constant time on its side).
enum WebhookSignature {
    static let header = "X-Tally-Signature"

    static func value(of body: [UInt8], secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + code.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
