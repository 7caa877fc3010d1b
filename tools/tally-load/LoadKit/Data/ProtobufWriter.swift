/// Protobuf wire encoding (varints, fixed widths, length-delimited) into a byte array.
struct ProtobufWriter {
    var bytes: [UInt8] = []

    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    mutating func tag(_ number: Int, _ wireType: WireType) {
        varint(UInt64(number) << 3 | wireType.rawValue)
    }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func fixed32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func fixed64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func lengthDelimited(_ number: Int, _ payload: [UInt8]) {
        tag(number, .lengthDelimited)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    /// Writes one value of a scalar field (tag included), converting `value` to the field's
    /// type as proto3 JSON allows (numbers as strings, enums by name or number, bytes as base64).
    mutating func scalar(_ field: FieldSchema, _ value: TemplateValue, schema: ProtoSchema) throws(LoadError) {
        let number = field.number
        switch field.kind {
        case .int32:
            tag(number, .varint)
            varint(UInt64(bitPattern: Int64(try Self.integer(value, field, Int32.self))))
        case .int64:
            tag(number, .varint)
            varint(UInt64(bitPattern: try Self.integer(value, field, Int64.self)))
        case .uint32:
            tag(number, .varint)
            varint(UInt64(try Self.integer(value, field, UInt32.self)))
        case .uint64:
            tag(number, .varint)
            varint(try Self.integer(value, field, UInt64.self))
        case .sint32:
            let v = try Self.integer(value, field, Int32.self)
            tag(number, .varint)
            varint(UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))))
        case .sint64:
            let v = try Self.integer(value, field, Int64.self)
            tag(number, .varint)
            varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
        case .fixed32:
            tag(number, .fixed32)
            fixed32(try Self.integer(value, field, UInt32.self))
        case .sfixed32:
            tag(number, .fixed32)
            fixed32(UInt32(bitPattern: try Self.integer(value, field, Int32.self)))
        case .fixed64:
            tag(number, .fixed64)
            fixed64(try Self.integer(value, field, UInt64.self))
        case .sfixed64:
            tag(number, .fixed64)
            fixed64(UInt64(bitPattern: try Self.integer(value, field, Int64.self)))
        case .float:
            tag(number, .fixed32)
            fixed32(Float(try Self.floating(value, field)).bitPattern)
        case .double:
            tag(number, .fixed64)
            fixed64(try Self.floating(value, field).bitPattern)
        case .bool:
            let flag: Bool
            switch value {
            case .bool(let b): flag = b
            case .string("true"): flag = true
            case .string("false"): flag = false
            default: throw Self.mismatch(value, field, "a boolean")
            }
            tag(number, .varint)
            varint(flag ? 1 : 0)
        case .string:
            var text = value.text
            text.withUTF8 { utf8 in  // no intermediate array per string value
                tag(number, .lengthDelimited)
                varint(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        case .bytes:
            switch value {
            case .bytes(let raw): lengthDelimited(number, raw)
            case .string(let text):
                guard let raw = Base64Text.decode(text) else { throw Self.mismatch(value, field, "base64 text") }
                lengthDelimited(number, raw)
            default: throw Self.mismatch(value, field, "bytes (base64 text)")
            }
        case .enumeration(let enumName):
            let code: Int32
            switch value {
            case .string(let name):
                if let known = schema.enumeration(enumName)?.values[name] {
                    code = known
                } else if let numeric = Int32(name) {
                    code = numeric
                } else {
                    let known = schema.enumeration(enumName)?.values.sorted { $0.value < $1.value }.map(\.key) ?? []
                    throw LoadError.usage("field \(field.name): \"\(name)\" is not a value of \(enumName) (\(known.joined(separator: ", ")))")
                }
            default: code = try Self.integer(value, field, Int32.self)
            }
            tag(number, .varint)
            varint(UInt64(bitPattern: Int64(code)))
        case .message(let name):
            throw LoadError.usage("field \(field.name) is a message (\(name)): give a JSON object, not \(value.text)")
        }
    }

    private static func integer<T: FixedWidthInteger>(_ value: TemplateValue, _ field: FieldSchema, _: T.Type) throws(LoadError) -> T {
        switch value {
        case .int(let v):
            if let exact = T(exactly: v) { return exact }
        case .double(let v):
            if let exact = T(exactly: v) { return exact }
        case .string(let text):
            if let parsed = T(text) { return parsed }
            if let v = Double(text), let exact = T(exactly: v) { return exact }
        default: break
        }
        throw mismatch(value, field, "an integer in \(T.min)...\(T.max)")
    }

    private static func floating(_ value: TemplateValue, _ field: FieldSchema) throws(LoadError) -> Double {
        switch value {
        case .int(let v): return Double(v)
        case .double(let v): return v
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        case .string(let text):
            if let v = Double(text) { return v }
        default: break
        }
        throw mismatch(value, field, "a number")
    }

    private static func mismatch(_ value: TemplateValue, _ field: FieldSchema, _ expected: String) -> LoadError {
        .usage("field \(field.name): expected \(expected), got \"\(value.text)\"")
    }
}
