internal import CProtobufC
internal import CTallyProto

/// protobuf-c's service descriptors for every service in proto/: their methods point at
/// the request and response message descriptors the server itself decodes with.
///
/// `RPCCatalogTests` checks that this list covers `ProtoDescriptors.services`, so a service
/// added to proto/ without a line here fails the tests instead of the load run.
enum ProtobufCServices {
    static var all: [ProtobufCServiceDescriptor] {
        [
            bench__v1__echo__descriptor,
            grpc__health__v1__health__descriptor,
            grpc__reflection__v1__server_reflection__descriptor,
            grpc__reflection__v1alpha__server_reflection__descriptor,
            grpc__testing__test_service__descriptor,
            grpc__testing__unimplemented_service__descriptor,
            grpc__testing__reconnect_service__descriptor,
            tally__v1__event_service__descriptor,
            tally__v1__leaderboard_service__descriptor,
            tally__v1__topup_service__descriptor,
            tally__v1__quiz_service__descriptor,
            tally__v1__presence_service__descriptor,
            tally__v1__admin_service__descriptor,
        ]
    }

    /// Request and response descriptors of each method, by gRPC path `/pkg.Service/Method`.
    static func methodDescriptors() -> [String: (input: UnsafePointer<ProtobufCMessageDescriptor>, output: UnsafePointer<ProtobufCMessageDescriptor>)] {
        var result: [String: (input: UnsafePointer<ProtobufCMessageDescriptor>, output: UnsafePointer<ProtobufCMessageDescriptor>)] = [:]
        for service in all {
            let serviceName = String(cString: service.name)
            for index in 0..<Int(service.n_methods) {
                let method = service.methods[index]
                result["/\(serviceName)/\(String(cString: method.name))"] = (method.input, method.output)
            }
        }
        return result
    }
}
