import Storage
public import Codec

/// Checks events against `EventRules` and names the event and field of the first problem,
/// e.g. `events[3].user_id: must not be empty`.
public struct EventValidator: Sendable {
    public var rules: EventRules

    public init(rules: EventRules = .defaults) {
        self.rules = rules
    }

    /// A whole batch over the limit is refused, never truncated.
    public func checkBatchSize(_ count: Int, field: String = "events") throws(RPCError) {
        if count == 0 {
            throw RPCError(.invalidArgument, "\(field): at least one event is required")
        }
        if count > rules.batchMax {
            throw RPCError(
                .invalidArgument,
                "\(field): \(count) events in one batch, at most \(rules.batchMax) allowed (EVENT_BATCH_MAX)")
        }
    }

    /// The reason `event` is invalid, or nil. `nowMs` is the server's clock (unix ms).
    public func problem(in event: Tally_V1_Event, at index: Int, nowMs: Int64, field: String = "events") -> String? {
        let prefix = "\(field)[\(index)]"
        if let reason = Self.textProblem(event.id, max: rules.idMaxLength) { return "\(prefix).id: \(reason)" }
        if let reason = Self.textProblem(event.userId, max: rules.userIDMaxLength) {
            return "\(prefix).user_id: \(reason)"
        }
        if let reason = typeProblem(event.type) { return "\(prefix).type: \(reason)" }
        if event.clientTimeMs < 0 {
            return "\(prefix).client_time_ms: must not be negative"
        }
        if event.clientTimeMs > nowMs + rules.maxClockSkewMs {
            return "\(prefix).client_time_ms: more than \(rules.maxClockSkewMs / 3_600_000) h in the future"
        }
        if event.durationMs < 0 { return "\(prefix).duration_ms: must not be negative" }
        if event.level < 0 { return "\(prefix).level: must not be negative" }
        if !EventRules.isStorableScore(event.score) {
            return "\(prefix).score: must be within ±\(EventRules.maxScore)"
        }
        if event.type == "game_ended", !event.tournamentId.isEmpty,
            let reason = Self.textProblem(event.tournamentId, max: 64)
        {
            return "\(prefix).tournament_id: \(reason)"
        }
        if event.attributes.count > rules.attributesMax {
            return "\(prefix).attributes: \(event.attributes.count) entries, at most \(rules.attributesMax) allowed"
        }
        for (key, value) in event.attributes {
            if key.isEmpty { return "\(prefix).attributes: keys must not be empty" }
            if key.utf8.count > rules.attributeKeyMaxLength {
                return "\(prefix).attributes[\(Self.excerpt(key))]: key longer than \(rules.attributeKeyMaxLength) bytes"
            }
            if value.utf8.count > rules.attributeValueMaxLength {
                return "\(prefix).attributes[\(Self.excerpt(key))]: value longer than \(rules.attributeValueMaxLength) bytes"
            }
            // Attributes are stored as jsonb, which cannot hold U+0000: refused here, or the
            // batch would fail in the worker after it was acknowledged.
            if key.utf8.contains(0) { return "\(prefix).attributes: keys must not contain U+0000" }
            if value.utf8.contains(0) { return "\(prefix).attributes[\(Self.excerpt(key))]: value must not contain U+0000" }
        }
        return nil
    }

    private func typeProblem(_ type: String) -> String? {
        if type.isEmpty { return "must not be empty" }
        if EventRules.knownTypes.contains(type) { return nil }
        guard type.hasPrefix(EventRules.customPrefix) else {
            return "unknown type \"\(Self.excerpt(type))\"; custom types start with \"\(EventRules.customPrefix)\""
        }
        if type.utf8.count == EventRules.customPrefix.utf8.count { return "custom type needs a name after \"custom.\"" }
        if type.utf8.count > rules.typeMaxLength { return "longer than \(rules.typeMaxLength) bytes" }
        return nil
    }

    private static func textProblem(_ text: String, max: Int) -> String? {
        if text.isEmpty { return "must not be empty" }
        if text.utf8.count > max { return "longer than \(max) bytes" }
        if containsControlCharacter(text) { return "must not contain control characters" }
        return nil
    }

    /// Whether `text` has a character of Unicode's "control" category (Cc), which is exactly
    /// U+0000-U+001F and U+007F-U+009F. Checked on the UTF-8 bytes (U+0080-U+009F are C2 80 to
    /// C2 9F; C2 is never a continuation byte): a Unicode property lookup per scalar cost 15%
    /// of the server's CPU under event ingestion.
    static func containsControlCharacter(_ text: String) -> Bool {
        if let found = text.utf8.withContiguousStorageIfAvailable(containsControlCharacter) { return found }
        return containsControlCharacter(Array(text.utf8))
    }

    private static func containsControlCharacter(_ bytes: some Collection<UInt8>) -> Bool {
        var previous: UInt8 = 0
        for byte in bytes {
            if byte < 0x20 || byte == 0x7F || (previous == 0xC2 && byte >= 0x80 && byte <= 0x9F) { return true }
            previous = byte
        }
        return false
    }

    /// Client text echoed in an error, kept short.
    private static func excerpt(_ text: String) -> String {
        text.count <= 32 ? text : String(text.prefix(32)) + "…"
    }
}
