import Codec

/// Every RPC in proto/ with the schemas of its messages.
///
/// Call shapes and type names come from the generated `ProtoDescriptors.services`; field
/// layouts come from protobuf-c's descriptors. Both are generated from the same .proto files
/// the server is built from.
public struct RPCCatalog: Sendable {
    public let rpcs: [RPCDescription]
    public let schema: ProtoSchema

    /// The catalog of everything compiled into this binary.
    public static let standard = RPCCatalog()

    private init() {
        let descriptors = ProtobufCServices.methodDescriptors()
        var rpcs: [RPCDescription] = []
        var schema = ProtoSchema()
        for service in ProtoDescriptors.services {
            for method in service.methods {
                let rpc = RPCDescription(
                    name: "\(service.name)/\(method.name)",
                    kind: RPCKind(clientStreaming: method.clientStreaming, serverStreaming: method.serverStreaming),
                    input: method.input, output: method.output)
                guard let pair = descriptors[rpc.path] else { continue }
                schema.addReachable(from: pair.input)
                schema.addReachable(from: pair.output)
                rpcs.append(rpc)
            }
        }
        self.rpcs = rpcs
        self.schema = schema
    }

    /// Finds an RPC by full name, with or without the leading slash
    /// (`tally.v1.EventService/Track`, `/tally.v1.EventService/Track`); a `.` between service
    /// and method (`tally.v1.EventService.Track`) is accepted too, as grpcurl writes it.
    public func rpc(named name: String) throws(LoadError) -> RPCDescription {
        var key = name.hasPrefix("/") ? String(name.dropFirst()) : name
        if !key.contains("/"), let dot = key.lastIndex(of: ".") {
            key.replaceSubrange(dot...dot, with: "/")
        }
        if let rpc = rpcs.first(where: { $0.name == key }) { return rpc }
        let method = key.split(separator: "/").last.map(String.init) ?? key
        let similar = rpcs.filter { $0.name.hasSuffix("/" + method) }.map(\.name)
        let hint = similar.isEmpty ? " (tally-load --list shows every RPC)" : "; did you mean \(similar.joined(separator: " or "))?"
        throw LoadError.usage("unknown RPC \"\(name)\"\(hint)")
    }

    /// Services present in the generated list but without a protobuf-c descriptor.
    public var servicesWithoutDescriptors: [String] {
        let served = Set(rpcs.map { $0.name.split(separator: "/")[0] })
        return ProtoDescriptors.services.map(\.name).filter { !served.contains(Substring($0)) }
    }
}
