/// The messages a call sends: one template for every message, or, for streams, a list whose
/// k-th element makes the k-th message (the last repeating).
public struct RequestData: Sendable {
    public let templates: [RequestTemplate]

    /// Compiles JSON text for `rpc`'s request type: an object, or for client streams an array
    /// of objects.
    public init(text: String, rpc: RPCDescription, schema: ProtoSchema) throws(LoadError) {
        let json = try JSONParser.parse(text)
        if case .array(let elements) = json {
            guard rpc.kind.sendsStream else {
                throw LoadError.usage("\(rpc.name) takes one request: give a JSON object, not an array")
            }
            guard !elements.isEmpty else { throw LoadError.usage("\(rpc.name): the array of stream messages is empty") }
            var templates: [RequestTemplate] = []
            for element in elements { templates.append(try RequestTemplate(element, message: rpc.input, schema: schema)) }
            self.templates = templates
        } else {
            self.templates = [try RequestTemplate(json, message: rpc.input, schema: schema)]
        }
    }

    /// The built-in data of `rpc`.
    public static func builtIn(for rpc: RPCDescription, schema: ProtoSchema) throws(LoadError) -> RequestData {
        try RequestData(text: DefaultTemplates.text(for: rpc), rpc: rpc, schema: schema)
    }

    /// The encoding of the stream's `context.messageIndex`-th message (1-based).
    public func encode(_ context: inout GeneratorContext) throws(LoadError) -> [UInt8] {
        let index = min(max(context.messageIndex, 1), templates.count) - 1
        return try templates[index].encode(&context)
    }
}
