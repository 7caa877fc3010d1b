/// The compiled `.proto` files, for server reflection: each file's serialized
/// `FileDescriptorProto`, what it declares, and every service's methods. The data is
/// generated from proto/ (see `ProtoDescriptors+Generated.swift`).
public enum ProtoDescriptors {
    /// Every file, by name.
    public static let files: [String: ProtoFileDescriptor] = Dictionary(
        uniqueKeysWithValues: generatedFiles.map { ($0.name, $0) })

    /// Every service defined in proto/.
    public static var services: [ProtoServiceDescriptor] { generatedServices }

    private static let fileBySymbol: [String: String] = {
        var index: [String: String] = [:]
        for file in generatedFiles {
            for symbol in file.symbols { index[symbol] = file.name }
        }
        return index
    }()

    /// The file declaring a fully-qualified symbol (service, method, message or enum).
    public static func file(containingSymbol symbol: String) -> ProtoFileDescriptor? {
        fileBySymbol[symbol].flatMap { files[$0] }
    }

    /// Every generated message type by its fully-qualified name, for tools that pick the
    /// type at run time (tests, load generators); includes the codec's test messages.
    public static let messageTypes: [String: any ProtobufMessage.Type] = Dictionary(
        uniqueKeysWithValues: generatedMessageTypes.map { ($0.protoName, $0) })

    /// `file` and everything it imports, transitively, the file itself first.
    public static func withDependencies(_ file: ProtoFileDescriptor) -> [ProtoFileDescriptor] {
        var result: [ProtoFileDescriptor] = []
        var seen: Set<String> = []
        var pending = [file.name]
        while let name = pending.popLast() {
            guard seen.insert(name).inserted, let next = files[name] else { continue }
            result.append(next)
            pending.append(contentsOf: next.dependencies.reversed())
        }
        return result
    }
}

/// One compiled `.proto` file.
public struct ProtoFileDescriptor: Sendable {
    public let name: String
    public let dependencies: [String]
    /// Fully-qualified names of what the file declares.
    public let symbols: [String]
    private let base64: String

    init(name: String, dependencies: [String], symbols: [String], base64: String) {
        self.name = name
        self.dependencies = dependencies
        self.symbols = symbols
        self.base64 = base64
    }

    /// The serialized `google.protobuf.FileDescriptorProto`.
    public var serialized: [UInt8] { Base64.decode(base64) ?? [] }
}

/// A service and its methods.
public struct ProtoServiceDescriptor: Sendable {
    public let name: String
    public let methods: [Method]

    public struct Method: Sendable {
        public let name: String
        public let input: String
        public let output: String
        public let clientStreaming: Bool
        public let serverStreaming: Bool
    }
}
