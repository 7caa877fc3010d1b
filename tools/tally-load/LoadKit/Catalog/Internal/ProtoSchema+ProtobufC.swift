internal import CProtobufC

extension ProtoSchema {
    /// Adds `descriptor`'s message and everything its fields reach (messages and enums).
    mutating func addReachable(from descriptor: UnsafePointer<ProtobufCMessageDescriptor>) {
        var pending = [descriptor]
        while let next = pending.popLast() {
            let message = next.pointee
            let name = String(cString: message.name)
            guard self.message(name) == nil else { continue }
            var fields: [FieldSchema] = []
            for index in 0..<Int(message.n_fields) {
                let field = message.fields[index]
                let kind: FieldSchema.Kind
                var isMap = false
                switch field.type {
                case PROTOBUF_C_TYPE_INT32: kind = .int32
                case PROTOBUF_C_TYPE_SINT32: kind = .sint32
                case PROTOBUF_C_TYPE_SFIXED32: kind = .sfixed32
                case PROTOBUF_C_TYPE_INT64: kind = .int64
                case PROTOBUF_C_TYPE_SINT64: kind = .sint64
                case PROTOBUF_C_TYPE_SFIXED64: kind = .sfixed64
                case PROTOBUF_C_TYPE_UINT32: kind = .uint32
                case PROTOBUF_C_TYPE_FIXED32: kind = .fixed32
                case PROTOBUF_C_TYPE_UINT64: kind = .uint64
                case PROTOBUF_C_TYPE_FIXED64: kind = .fixed64
                case PROTOBUF_C_TYPE_FLOAT: kind = .float
                case PROTOBUF_C_TYPE_DOUBLE: kind = .double
                case PROTOBUF_C_TYPE_BOOL: kind = .bool
                case PROTOBUF_C_TYPE_STRING: kind = .string
                case PROTOBUF_C_TYPE_BYTES: kind = .bytes
                case PROTOBUF_C_TYPE_ENUM:
                    let enumeration = field.descriptor.assumingMemoryBound(to: ProtobufCEnumDescriptor.self)
                    let enumName = String(cString: enumeration.pointee.name)
                    if self.enumeration(enumName) == nil { add(Self.enumSchema(enumeration)) }
                    kind = .enumeration(enumName)
                default:
                    let nested = field.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                    kind = .message(String(cString: nested.pointee.name))
                    isMap = field.label == PROTOBUF_C_LABEL_REPEATED && Self.isMapEntry(nested, fieldName: String(cString: field.name))
                    pending.append(nested)
                }
                fields.append(
                    FieldSchema(
                        name: String(cString: field.name), number: Int(field.id), kind: kind,
                        isRepeated: field.label == PROTOBUF_C_LABEL_REPEATED,
                        isPacked: field.flags & UInt32(PROTOBUF_C_FIELD_FLAG_PACKED.rawValue) != 0,
                        isMap: isMap))
            }
            add(MessageSchema(name: name, fields: fields, isMapEntry: Self.isMapEntryShape(next)))
        }
    }

    /// protoc names a map field's entry message `<FieldInCamelCase>Entry`, with `key` = 1 and
    /// `value` = 2; protobuf-c keeps no flag for it, so the shape and name tell.
    private static func isMapEntry(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, fieldName: String) -> Bool {
        guard isMapEntryShape(descriptor) else { return false }
        let camel = FieldSchema.lowerCamelCase(fieldName)
        let expected = camel.prefix(1).uppercased() + camel.dropFirst() + "Entry"
        return String(cString: descriptor.pointee.short_name) == expected
    }

    private static func isMapEntryShape(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> Bool {
        let message = descriptor.pointee
        guard message.n_fields == 2 else { return false }
        return String(cString: message.short_name).hasSuffix("Entry")
            && message.fields[0].id == 1 && String(cString: message.fields[0].name) == "key"
            && message.fields[1].id == 2 && String(cString: message.fields[1].name) == "value"
    }

    private static func enumSchema(_ descriptor: UnsafePointer<ProtobufCEnumDescriptor>) -> EnumSchema {
        let enumeration = descriptor.pointee
        var values: [String: Int32] = [:]
        for index in 0..<Int(enumeration.n_values) {
            let value = enumeration.values[index]
            values[String(cString: value.name)] = value.value
        }
        return EnumSchema(name: String(cString: enumeration.name), values: values)
    }
}
