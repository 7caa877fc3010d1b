import Foundation
import Testing

@testable import Domain

/// The signature and the exact bytes it covers.
@Suite("Webhook signature and payload")
struct WebhookSignatureTests {
    /// The HMAC-SHA256 example of Wikipedia's "HMAC" article, computed independently by
    /// `python3 -c 'import hmac,hashlib; print(hmac.new(b"key", b"The quick brown fox
    /// jumps over the lazy dog", hashlib.sha256).hexdigest())'` prints.
    @Test("a known HMAC-SHA256 vector")
    func knownVector() {
        let value = WebhookSignature.value(of: Array("The quick brown fox jumps over the lazy dog".utf8), secret: "key")
        #expect(value == "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    }

    /// RFC 4231 test case 2 (a short key and data).
    @Test("RFC 4231 test case 2")
    func rfc4231() {
        let value = WebhookSignature.value(of: Array("what do ya want for nothing?".utf8), secret: "Jefe")
        #expect(value == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("the payload embeds a JSON body as JSON, anything else as a string, and when it was sent")
    func payload() throws {
        let json = NotificationMessage(id: "reward:q:d:u\"1", destination: "u1", kind: "quiz.reward", body: #"{"amount": 5}"#)
        let bytes = WebhookPayload.bytes(of: json, attempt: 3, sentAt: Date(timeIntervalSince1970: 1_764_900_000.1239))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["id"] as? String == "reward:q:d:u\"1")
        #expect(object["destination"] as? String == "u1")
        #expect(object["kind"] as? String == "quiz.reward")
        #expect((object["body"] as? [String: Any])?["amount"] as? Int == 5)
        #expect(object["attempt"] as? Int == 3)
        #expect(object["sent_at"] as? Int64 == 1_764_900_000_123)

        let text = NotificationMessage(id: "n", destination: "u", kind: "k", body: "not {json")
        let plain = try #require(try JSONSerialization.jsonObject(with: Data(WebhookPayload.bytes(of: text, attempt: 1, sentAt: Date()))) as? [String: Any])
        #expect(plain["body"] as? String == "not {json")
    }
}
