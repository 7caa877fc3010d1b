/// A request message written as JSON (proto3 JSON field names, `{{...}}` generators), compiled
/// against the message's schema once and encoded to protobuf bytes per request.
///
/// Static parts are encoded at compile time; a template without generators is one constant
/// byte string, so a fixed request costs nothing per call. An array whose first element is
/// `"{{repeat N}}"` (or `"{{repeat}}"` for `--batch-size`) holds N fresh copies of its next
/// element: `{"events": ["{{repeat}}", {"id": "{{uuid}}", ...}]}`.
public struct RequestTemplate: Sendable {
    /// The request message's fully-qualified name.
    public let messageName: String
    let plan: MessagePlan
    let schema: ProtoSchema
    /// The encoding, when no part of the template changes between requests.
    public let constantBytes: [UInt8]?

    public init(_ json: JSONValue, message messageName: String, schema: ProtoSchema) throws(LoadError) {
        guard let message = schema.message(messageName) else {
            throw LoadError.usage("message type \(messageName) is not in the compiled protos")
        }
        self.messageName = messageName
        self.schema = schema
        self.plan = try MessagePlan.compile(json, message: message, schema: schema, path: "")
        self.constantBytes = plan.constantBytes
    }

    /// Compiles JSON text (as given with `-d` or read from `-D`).
    public init(text: String, message messageName: String, schema: ProtoSchema) throws(LoadError) {
        try self.init(JSONParser.parse(text), message: messageName, schema: schema)
    }

    /// The protobuf encoding of a fresh request.
    public func encode(_ context: inout GeneratorContext) throws(LoadError) -> [UInt8] {
        if let constantBytes { return constantBytes }
        var writer = ProtobufWriter()
        try plan.encode(into: &writer, context: &context, schema: schema)
        return writer.bytes
    }
}

/// A message's fields in JSON order, constant runs pre-encoded.
struct MessagePlan: Sendable {
    enum Part: Sendable {
        case constant([UInt8])
        case value(FieldValue)
        /// `count` nil: `--batch-size`.
        case repeated(FieldValue, count: Int?)
    }

    /// A field and the plan of its value, behind one reference: a request walks its plan once
    /// per field value, and copying a field's schema (its names) at each step was 17% of the
    /// load tool's CPU on 100-event batches.
    final class FieldValue: Sendable {
        let field: FieldSchema
        let value: ValuePlan

        init(_ field: FieldSchema, _ value: ValuePlan) {
            self.field = field
            self.value = value
        }

        func encode(into writer: inout ProtobufWriter, context: inout GeneratorContext, schema: ProtoSchema) throws(LoadError) {
            try value.encode(field, into: &writer, context: &context, schema: schema)
        }
    }

    var parts: [Part]

    var constantBytes: [UInt8]? {
        if parts.isEmpty { return [] }
        if parts.count == 1, case .constant(let bytes) = parts[0] { return bytes }
        return nil
    }

    static func compile(_ json: JSONValue, message: MessageSchema, schema: ProtoSchema, path: String) throws(LoadError) -> MessagePlan {
        guard case .object(let members) = json else {
            throw LoadError.usage("\(path.isEmpty ? message.name : path): expected a JSON object for \(message.name)")
        }
        var plan = MessagePlan(parts: [])
        for member in members {
            guard let field = message.field(named: member.key) else {
                let known = message.fields.map(\.name).joined(separator: ", ")
                throw LoadError.usage("\(message.name) has no field \"\(member.key)\" (fields: \(known.isEmpty ? "none" : known))")
            }
            let fieldPath = path.isEmpty ? field.name : "\(path).\(field.name)"
            if case .null = member.value { continue }
            if field.isMap {
                try plan.compileMap(member.value, field: field, schema: schema, path: fieldPath)
            } else if field.isRepeated {
                guard case .array(let elements) = member.value else {
                    throw LoadError.usage("\(fieldPath): repeated field needs a JSON array")
                }
                var index = 0
                while index < elements.count {
                    if case .template(let text) = elements[index].unquotedTemplate, case .repeatNext(let count) = try TemplateFunction(parsing: text) {
                        guard index + 1 < elements.count else {
                            throw LoadError.usage("\(fieldPath): {{repeat}} must be followed by the element to repeat")
                        }
                        let value = try ValuePlan.compile(elements[index + 1], field: field, schema: schema, path: "\(fieldPath)[]")
                        plan.parts.append(.repeated(FieldValue(field, value), count: count))
                        index += 2
                    } else {
                        try plan.append(field, try ValuePlan.compile(elements[index], field: field, schema: schema, path: "\(fieldPath)[\(index)]"), schema: schema)
                        index += 1
                    }
                }
            } else {
                try plan.append(field, try ValuePlan.compile(member.value, field: field, schema: schema, path: fieldPath), schema: schema)
            }
        }
        return plan
    }

    private mutating func compileMap(_ json: JSONValue, field: FieldSchema, schema: ProtoSchema, path: String) throws(LoadError) {
        guard case .object(let members) = json else { throw LoadError.usage("\(path): map field needs a JSON object") }
        guard case .message(let entryName) = field.kind, let entry = schema.message(entryName),
            let keyField = entry.field(named: "key"), let valueField = entry.field(named: "value")
        else { throw LoadError.usage("\(path): map entry type not found") }
        for member in members {
            let key = try ValuePlan.compile(.string(member.key), field: keyField, schema: schema, path: "\(path).key")
            let value = try ValuePlan.compile(member.value, field: valueField, schema: schema, path: "\(path)[\(member.key)]")
            var entryPlan = MessagePlan(parts: [])
            try entryPlan.append(keyField, key, schema: schema)
            try entryPlan.append(valueField, value, schema: schema)
            try append(field, .message(entryPlan), schema: schema)
        }
    }

    /// Adds a field value, encoding it now when it cannot change.
    private mutating func append(_ field: FieldSchema, _ value: ValuePlan, schema: ProtoSchema) throws(LoadError) {
        if value.isConstant {
            var writer = ProtobufWriter()
            try value.encode(field, into: &writer, context: nil, schema: schema)
            if case .constant(let previous)? = parts.last {
                parts[parts.count - 1] = .constant(previous + writer.bytes)
            } else {
                parts.append(.constant(writer.bytes))
            }
        } else {
            parts.append(.value(FieldValue(field, value)))
        }
    }

    func encode(into writer: inout ProtobufWriter, context: inout GeneratorContext, schema: ProtoSchema) throws(LoadError) {
        for part in parts {
            switch part {
            case .constant(let bytes): writer.bytes.append(contentsOf: bytes)
            case .value(let value): try value.encode(into: &writer, context: &context, schema: schema)
            case .repeated(let value, let count):
                for item in 0..<(count ?? context.batchSize) {
                    context.itemIndex = item
                    try value.encode(into: &writer, context: &context, schema: schema)
                }
                context.itemIndex = 0
            }
        }
    }
}

/// One field value of a template.
indirect enum ValuePlan: Sendable {
    case literal(TemplateValue)
    case function(TemplateFunction)
    case interpolation([StringPiece])
    case message(MessagePlan)

    enum StringPiece: Sendable {
        case text(String)
        case function(TemplateFunction)
    }

    /// True when the value is the same for every request.
    var isConstant: Bool {
        switch self {
        case .literal: true
        case .message(let plan): plan.constantBytes != nil
        case .function, .interpolation: false
        }
    }

    static func compile(_ json: JSONValue, field: FieldSchema, schema: ProtoSchema, path: String) throws(LoadError) -> ValuePlan {
        if case .message(let name) = field.kind {
            guard let message = schema.message(name) else { throw LoadError.usage("\(path): message type \(name) not found") }
            return .message(try MessagePlan.compile(json, message: message, schema: schema, path: path))
        }
        let plan: ValuePlan
        switch json {
        case .null: throw LoadError.usage("\(path): null is only allowed for a whole field")
        case .bool(let value): plan = .literal(.bool(value))
        case .number(let text):
            if let value = Int64(text) {
                plan = .literal(.int(value))
            } else if UInt64(text) != nil {
                plan = .literal(.string(text))
            } else {
                plan = .literal(.double(Double(text) ?? 0))
            }
        case .template(let text): plan = try function(text, path: path)
        case .string(let text): plan = try interpolated(text, path: path)
        case .array, .object: throw LoadError.usage("\(path): expected a single value for field \(field.name)")
        }
        if case .literal(let value) = plan {
            // Type-check constants now, so a bad literal is a usage error before any load.
            var writer = ProtobufWriter()
            try writer.scalar(field, value, schema: schema)
        }
        return plan
    }

    private static func function(_ text: String, path: String) throws(LoadError) -> ValuePlan {
        let function = try TemplateFunction(parsing: text)
        if case .repeatNext = function { throw LoadError.usage("\(path): {{repeat}} only goes first in an array") }
        return .function(function)
    }

    /// `"{{f}}"` alone keeps the function's own type; text around generators makes a string.
    private static func interpolated(_ text: String, path: String) throws(LoadError) -> ValuePlan {
        let bytes = Array(text.utf8)
        func find(_ a: UInt8, from start: Int) -> Int? {
            var index = start
            while index + 1 < bytes.count {
                if bytes[index] == a && bytes[index + 1] == a { return index }
                index += 1
            }
            return nil
        }
        guard find(UInt8(ascii: "{"), from: 0) != nil else { return .literal(.string(text)) }
        var pieces: [StringPiece] = []
        var cursor = 0
        while let open = find(UInt8(ascii: "{"), from: cursor) {
            guard let close = find(UInt8(ascii: "}"), from: open + 2) else {
                throw LoadError.usage("\(path): unterminated {{ in \"\(text)\"")
            }
            if open > cursor { pieces.append(.text(String(decoding: bytes[cursor..<open], as: UTF8.self))) }
            let function = try TemplateFunction(parsing: String(decoding: bytes[(open + 2)..<close], as: UTF8.self))
            if case .repeatNext = function { throw LoadError.usage("\(path): {{repeat}} only goes first in an array") }
            pieces.append(.function(function))
            cursor = close + 2
        }
        if cursor < bytes.count { pieces.append(.text(String(decoding: bytes[cursor...], as: UTF8.self))) }
        if pieces.count == 1, case .function(let function) = pieces[0] { return .function(function) }
        return .interpolation(pieces)
    }

    /// Writes the value with its tag; `context` is nil only for constants.
    func encode(_ field: FieldSchema, into writer: inout ProtobufWriter, context: inout GeneratorContext?, schema: ProtoSchema) throws(LoadError) {
        switch self {
        case .literal(let value): try writer.scalar(field, value, schema: schema)
        case .function(let function):
            guard context != nil else { return }
            try writer.scalar(field, function.evaluate(&context!), schema: schema)
        case .interpolation(let pieces):
            guard context != nil else { return }
            var text = ""
            for piece in pieces {
                switch piece {
                case .text(let literal): text += literal
                case .function(let function): text += function.evaluate(&context!).text
                }
            }
            try writer.scalar(field, .string(text), schema: schema)
        case .message(let plan):
            var nested = ProtobufWriter()
            if let bytes = plan.constantBytes {
                nested.bytes = bytes
            } else if context != nil {
                try plan.encode(into: &nested, context: &context!, schema: schema)
            }
            writer.lengthDelimited(field.number, nested.bytes)
        }
    }

    func encode(_ field: FieldSchema, into writer: inout ProtobufWriter, context: inout GeneratorContext, schema: ProtoSchema) throws(LoadError) {
        var optional: GeneratorContext? = context
        try encode(field, into: &writer, context: &optional, schema: schema)
        context = optional!
    }

    func encode(_ field: FieldSchema, into writer: inout ProtobufWriter, context: GeneratorContext?, schema: ProtoSchema) throws(LoadError) {
        var optional = context
        try encode(field, into: &writer, context: &optional, schema: schema)
    }
}

extension JSONValue {
    /// `"{{repeat}}"` written as a string reads like the bare token.
    var unquotedTemplate: JSONValue {
        if case .string(let text) = self, text.hasPrefix("{{"), text.hasSuffix("}}"), text.count >= 4 {
            let inner = text.dropFirst(2).dropLast(2)
            if !inner.contains("{{") { return .template(String(inner)) }
        }
        return self
    }
}
