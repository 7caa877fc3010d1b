/// Maps `:path` to methods. Built once at start-up, then read-only.
public struct RPCRouter: Sendable {
    private var methods: [String: RPCMethod] = [:]
    /// Service names (`package.Service`) with at least one method, for health and reflection.
    public private(set) var serviceNames: Set<String> = []

    public init() {}

    public mutating func register(_ method: RPCMethod) {
        precondition(methods[method.path] == nil, "method \(method.path) registered twice")
        methods[method.path] = method
        let service = method.path.dropFirst().split(separator: "/").first.map(String.init) ?? ""
        serviceNames.insert(service)
    }

    public mutating func register(_ service: some RPCService) {
        for method in service.methods { register(method) }
    }

    public func method(forPath path: String) -> RPCMethod? { methods[path] }

    public var paths: [String] { methods.keys.sorted() }
}

/// A group of methods registered together (one protobuf service).
public protocol RPCService: Sendable {
    var methods: [RPCMethod] { get }
}
