import Foundation
import Units

/// The exact bytes a webhook receives: `{"id", "destination", "kind", "body", "attempt",
/// "sent_at"}`, the message's body embedded as JSON (it is JSON text already) rather than as a
/// string, so the receiver parses one document. A body that is not JSON is embedded as a
/// string instead of breaking the document. `sent_at` is when this attempt was sent (Unix
/// milliseconds, taken once the rate limits let it go): signed with the rest, so a receiver
/// can refuse old replays, and it tells when a send left, whatever the network added.
///
/// Built once per send and signed as built: the signature covers these bytes, not a
/// re-serialisation that could order or escape differently.
enum WebhookPayload {
    static func bytes(of message: NotificationMessage, attempt: Int, sentAt: Date) -> [UInt8] {
        var json = "{\"id\":\(quoted(message.id)),\"destination\":\(quoted(message.destination)),\"kind\":\(quoted(message.kind)),\"body\":"
        json += isJSON(message.body) ? message.body : quoted(message.body)
        json += ",\"attempt\":\(attempt),\"sent_at\":\(sentAt.unixMilliseconds)}"
        return Array(json.utf8)
    }

    private static func isJSON(_ text: String) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil
    }

    /// A JSON string literal (JSONEncoder escapes exactly what JSON requires).
    private static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
