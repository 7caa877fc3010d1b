/// Heap storage for a message field whose type contains the message itself (directly or
/// through other singular fields); without it the Swift struct would have infinite size.
enum ProtobufIndirect<Value: Sendable & Hashable>: Sendable, Hashable {
    indirect case value(Value)

    init(_ value: Value) { self = .value(value) }

    var value: Value {
        switch self {
        case .value(let value): value
        }
    }
}
