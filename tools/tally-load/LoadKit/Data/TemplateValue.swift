/// A value a template function produced, converted to the field's type when encoded.
public enum TemplateValue: Sendable, Hashable {
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case string(String)
    case bytes([UInt8])

    /// How the value reads inside a string (`"user-{{seq}}"`).
    public var text: String {
        switch self {
        case .int(let value): String(value)
        case .double(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        case .string(let value): value
        case .bytes(let value): Base64Text.encode(value)
        }
    }
}
