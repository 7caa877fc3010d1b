import Codec

/// gRPC server reflection, v1 and v1alpha (same protocol, two packages), answered from the
/// descriptors compiled out of proto/ so grpcurl-style tools can list, describe and call
/// every method.
public struct ReflectionService: RPCService {
    private let index: ReflectionIndex

    /// `servedServices` are the services the router serves; every `tally.v1` service of the
    /// contract is listed as well (a method not served yet answers UNIMPLEMENTED).
    public init(servedServices: Set<String>) {
        var names = servedServices
        names.insert("grpc.reflection.v1.ServerReflection")
        names.insert("grpc.reflection.v1alpha.ServerReflection")
        for service in ProtoDescriptors.services where service.name.hasPrefix("tally.v1.") {
            names.insert(service.name)
        }
        self.index = ReflectionIndex(services: names.sorted())
    }

    public var methods: [RPCMethod] {
        [
            .bidirectionalStreaming("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") {
                [index] (requests: RequestStream<Grpc_Reflection_V1_ServerReflectionRequest>,
                    writer: ResponseWriter<Grpc_Reflection_V1_ServerReflectionResponse>, _: ServerContext) in
                for try await request in requests {
                    try await writer.write(index.answer(request))
                }
            },
            .bidirectionalStreaming("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") {
                [index] (requests: RequestStream<Grpc_Reflection_V1alpha_ServerReflectionRequest>,
                    writer: ResponseWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>, _: ServerContext) in
                for try await request in requests {
                    try await writer.write(index.answer(request))
                }
            },
        ]
    }
}

/// What reflection knows, independent of the protocol version.
struct ReflectionIndex: Sendable {
    let services: [String]

    enum Answer {
        case files([[UInt8]])
        case services([String])
        case extensionNumbers(type: String)
        case error(StatusCode, String)
    }

    enum Question {
        case fileByName(String)
        case fileContainingSymbol(String)
        case fileContainingExtension(type: String, number: Int32)
        case extensionNumbers(type: String)
        case listServices
        case none
    }

    func answer(_ question: Question) -> Answer {
        switch question {
        case .fileByName(let name):
            guard let file = ProtoDescriptors.files[name] else { return .error(.notFound, "file not found: \(name)") }
            return .files(ProtoDescriptors.withDependencies(file).map(\.serialized))
        case .fileContainingSymbol(let symbol):
            guard let file = ProtoDescriptors.file(containingSymbol: symbol) else {
                return .error(.notFound, "symbol not found: \(symbol)")
            }
            return .files(ProtoDescriptors.withDependencies(file).map(\.serialized))
        case .fileContainingExtension(let type, let number):
            return .error(.notFound, "no extension \(number) of \(type)")
        case .extensionNumbers(let type):
            guard ProtoDescriptors.file(containingSymbol: type) != nil else {
                return .error(.notFound, "type not found: \(type)")
            }
            return .extensionNumbers(type: type)
        case .listServices:
            return .services(services)
        case .none:
            return .error(.invalidArgument, "no message_request set")
        }
    }
}

extension ReflectionIndex {
    func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
        let question: Question =
            switch request.messageRequest {
            case .fileByFilename(let name)?: .fileByName(name)
            case .fileContainingSymbol(let symbol)?: .fileContainingSymbol(symbol)
            case .fileContainingExtension(let ext)?: .fileContainingExtension(type: ext.containingType, number: ext.extensionNumber)
            case .allExtensionNumbersOfType(let type)?: .extensionNumbers(type: type)
            case .listServices?: .listServices
            case nil: .none
            }
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch answer(question) {
        case .files(let files):
            var message = Grpc_Reflection_V1_FileDescriptorResponse()
            message.fileDescriptorProto = files
            response.messageResponse = .fileDescriptorResponse(message)
        case .services(let names):
            var message = Grpc_Reflection_V1_ListServiceResponse()
            message.service = names.map { var service = Grpc_Reflection_V1_ServiceResponse(); service.name = $0; return service }
            response.messageResponse = .listServicesResponse(message)
        case .extensionNumbers(let type):
            var message = Grpc_Reflection_V1_ExtensionNumberResponse()
            message.baseTypeName = type
            response.messageResponse = .allExtensionNumbersResponse(message)
        case .error(let code, let text):
            var message = Grpc_Reflection_V1_ErrorResponse()
            message.errorCode = Int32(code.rawValue)
            message.errorMessage = text
            response.messageResponse = .errorResponse(message)
        }
        return response
    }

    func answer(_ request: Grpc_Reflection_V1alpha_ServerReflectionRequest) -> Grpc_Reflection_V1alpha_ServerReflectionResponse {
        let question: Question =
            switch request.messageRequest {
            case .fileByFilename(let name)?: .fileByName(name)
            case .fileContainingSymbol(let symbol)?: .fileContainingSymbol(symbol)
            case .fileContainingExtension(let ext)?: .fileContainingExtension(type: ext.containingType, number: ext.extensionNumber)
            case .allExtensionNumbersOfType(let type)?: .extensionNumbers(type: type)
            case .listServices?: .listServices
            case nil: .none
            }
        var response = Grpc_Reflection_V1alpha_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch answer(question) {
        case .files(let files):
            var message = Grpc_Reflection_V1alpha_FileDescriptorResponse()
            message.fileDescriptorProto = files
            response.messageResponse = .fileDescriptorResponse(message)
        case .services(let names):
            var message = Grpc_Reflection_V1alpha_ListServiceResponse()
            message.service = names.map { var service = Grpc_Reflection_V1alpha_ServiceResponse(); service.name = $0; return service }
            response.messageResponse = .listServicesResponse(message)
        case .extensionNumbers(let type):
            var message = Grpc_Reflection_V1alpha_ExtensionNumberResponse()
            message.baseTypeName = type
            response.messageResponse = .allExtensionNumbersResponse(message)
        case .error(let code, let text):
            var message = Grpc_Reflection_V1alpha_ErrorResponse()
            message.errorCode = Int32(code.rawValue)
            message.errorMessage = text
            response.messageResponse = .errorResponse(message)
        }
        return response
    }
}
