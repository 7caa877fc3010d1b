import Foundation

/// The exact bytes a webhook receives: `{"id", "destination", "kind", "body", "attempt"}`, the
/// message's body embedded as JSON (it is JSON text already) rather than as a string, so the
/// receiver parses one document. A body that is not JSON is embedded as a string instead of
/// breaking the document.
///
/// Built once per send and signed as built: the signature covers these bytes, not a
/// re-serialisation that could order or escape differently.
enum WebhookPayload {
    static func bytes(of message: NotificationMessage, attempt: Int) -> [UInt8] {
        var json = "{\"id\":\(quoted(message.id)),\"destination\":\(quoted(message.destination)),\"kind\":\(quoted(message.kind)),\"body\":"
        json += isJSON(message.body) ? message.body : quoted(message.body)
        json += ",\"attempt\":\(attempt)}"
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
