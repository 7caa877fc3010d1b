import CoreMetrics

/// Maps `:path` to methods. Built once at start-up, then read-only.
public struct RPCRouter: Sendable {
    private var methods: [String: RPCMethod] = [:]
    /// Service names (`package.Service`) with at least one method, for health and reflection.
    public private(set) var serviceNames: Set<String> = []
    /// What every call passes before its handler, in order; each method gets those that apply.
    private let interceptors: [any ServerInterceptor]
    /// Where each method's call metrics go; nil records none.
    private let metricsFactory: (any MetricsFactory)?
    /// The metrics of calls to paths no method serves (one `other` label for all of them).
    let unknownMethodMetrics: CallMetrics?

    public init(interceptors: [any ServerInterceptor] = [], metrics: MetricsRegistry? = nil) {
        self.interceptors = interceptors
        self.metricsFactory = metrics?.factory
        self.unknownMethodMetrics = metrics.map { CallMetrics(method: CallMetrics.otherMethod, factory: $0.factory) }
    }

    public mutating func register(_ method: RPCMethod) {
        precondition(methods[method.path] == nil, "method \(method.path) registered twice")
        var method = method
        method.interceptors = interceptors.filter { $0.applies(to: method) }
        // A method restricted to some callers must never be served open by a missing interceptor.
        precondition(method.access == .anyone || method.interceptors.contains { $0.enforces(method.access) },
                     "method \(method.path) needs \(method.access) access, which no interceptor enforces")
        precondition(method.rateLimit.map { limit in method.interceptors.contains { $0.enforces(limit) } } ?? true,
                     "method \(method.path) declares a rate limit no interceptor enforces")
        method.metrics = metricsFactory.map { CallMetrics(method: String(method.path.dropFirst()), factory: $0) }
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
