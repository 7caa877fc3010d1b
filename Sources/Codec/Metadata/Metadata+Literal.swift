/// `[:]`, `["key": "value"]` and `["key-bin": .binary(bytes)]` literals (the client API's
/// defaults and tests).
extension Metadata: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, Value)...) {
        self.init()
        for (key, value) in elements {
            switch value {
            case .string(let string): add(key, string)
            case .binary(let bytes): add(key, binary: bytes)
            }
        }
    }
}

extension Metadata.Value: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        self = .string(value)
    }
}
