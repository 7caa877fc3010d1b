import Codec
import NIOCore

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
            Self.serverReflectionInfo(
                package: "grpc.reflection.v1", Grpc_Reflection_V1_ServerReflectionRequest.self,
                Grpc_Reflection_V1_ServerReflectionResponse.self, index: index),
            Self.serverReflectionInfo(
                package: "grpc.reflection.v1alpha", Grpc_Reflection_V1alpha_ServerReflectionRequest.self,
                Grpc_Reflection_V1alpha_ServerReflectionResponse.self, index: index),
        ]
    }

    /// `ServerReflectionInfo` of one protocol version, answered as v1.
    ///
    /// v1alpha's messages are v1's under another package name (the same fields and numbers),
    /// so a version's request is read as the v1 request of the same encoding and the v1
    /// response written as that version's response of the same encoding. Requests still
    /// decode as the version's own type, so even a malformed one is answered as before.
    private static func serverReflectionInfo<Request: ProtobufMessage, Response: ProtobufMessage>(
        package: String, _: Request.Type, _: Response.Type, index: ReflectionIndex
    ) -> RPCMethod {
        .bidirectionalStreaming("/\(package).ServerReflection/ServerReflectionInfo") {
            (requests: RequestStream<Request>, writer: ResponseWriter<Response>, _: ServerContext) in
            for try await request in requests {
                let question = try Grpc_Reflection_V1_ServerReflectionRequest(sameEncodingAs: request)
                try await writer.write(try Response(sameEncodingAs: index.answer(question)))
            }
        }
    }
}

extension ProtobufMessage {
    /// The message of this type that `other` encodes to: `other` itself when the types are
    /// the same, otherwise its encoding decoded as this type.
    fileprivate init(sameEncodingAs other: some ProtobufMessage) throws(ProtobufError) {
        if let same = other as? Self {
            self = same
            return
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(other.encodedSize)
        other.encode(into: &buffer)
        try self.init(protobuf: buffer)
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
}
