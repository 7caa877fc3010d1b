/// The shape of one protobuf message as the load generator needs it: each field's number,
/// wire type and cardinality, so JSON request templates can be encoded for any RPC.
///
/// Built from protobuf-c's descriptors (see `ProtoSchema+ProtobufC.swift`), which are the
/// very tables the server decodes with, so the two cannot disagree.
public struct MessageSchema: Sendable, Hashable {
    /// Fully-qualified name, e.g. `tally.v1.TrackRequest`.
    public var name: String
    public var fields: [FieldSchema]
    /// True for the synthetic `XxxEntry` message protoc makes for a `map<K, V>` field.
    public var isMapEntry: Bool

    public init(name: String, fields: [FieldSchema], isMapEntry: Bool = false) {
        self.name = name
        self.fields = fields
        self.isMapEntry = isMapEntry
    }

    /// The field named `key` in JSON: its proto name (`user_id`) or lowerCamelCase (`userId`).
    public func field(named key: String) -> FieldSchema? {
        fields.first { $0.name == key || $0.jsonName == key }
    }
}

/// One field of a `MessageSchema`.
public struct FieldSchema: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case int32, sint32, sfixed32, int64, sint64, sfixed64
        case uint32, fixed32, uint64, fixed64
        case float, double, bool, string, bytes
        /// Names a message of the schema set.
        case message(String)
        /// Names an enum of the schema set.
        case enumeration(String)
    }

    public var name: String
    public var jsonName: String
    public var number: Int
    public var kind: Kind
    public var isRepeated: Bool
    public var isPacked: Bool
    /// Set for the `message` fields that protoc generated from a `map<K, V>`.
    public var isMap: Bool

    public init(name: String, number: Int, kind: Kind, isRepeated: Bool = false, isPacked: Bool = false, isMap: Bool = false) {
        self.name = name
        self.jsonName = Self.lowerCamelCase(name)
        self.number = number
        self.kind = kind
        self.isRepeated = isRepeated
        self.isPacked = isPacked
        self.isMap = isMap
    }

    /// protoc's JSON name: underscores dropped, the letter after each one upper-cased.
    static func lowerCamelCase(_ name: String) -> String {
        var result = ""
        var upperNext = false
        for character in name {
            if character == "_" {
                upperNext = true
            } else if upperNext {
                result += character.uppercased()
                upperNext = false
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// An enum's value names and numbers.
public struct EnumSchema: Sendable, Hashable {
    public var name: String
    public var values: [String: Int32]

    public init(name: String, values: [String: Int32]) {
        self.name = name
        self.values = values
    }
}
