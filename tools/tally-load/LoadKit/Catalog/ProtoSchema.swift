/// Every message and enum reachable from the served RPCs' request and response types.
public struct ProtoSchema: Sendable {
    public private(set) var messages: [String: MessageSchema] = [:]
    public private(set) var enums: [String: EnumSchema] = [:]

    public init() {}

    public mutating func add(_ message: MessageSchema) {
        messages[message.name] = message
    }

    public mutating func add(_ enumeration: EnumSchema) {
        enums[enumeration.name] = enumeration
    }

    public func message(_ name: String) -> MessageSchema? { messages[name] }

    public func enumeration(_ name: String) -> EnumSchema? { enums[name] }
}
