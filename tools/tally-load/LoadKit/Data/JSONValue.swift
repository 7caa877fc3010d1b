/// A parsed JSON document, as request templates and scenario files are written.
///
/// Numbers keep their text so 64-bit integers survive exactly. `template` is a bare
/// `{{function args}}` token standing where a value may stand (`{"score": {{randomScore}}}`),
/// which plain JSON cannot express; strings may also embed `{{...}}` (see `RequestTemplate`).
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([Member])
    case template(String)

    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: JSONValue

        public init(_ key: String, _ value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The value of `key` when this is an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }
}
