public import Codec

/// One method the server can dispatch to: its path, shape and a type-erased body that decodes
/// requests, runs the typed handler and encodes responses.
public struct RPCMethod: Sendable {
    public let path: String
    public let kind: RPCKind
    /// Who may call it; an interceptor enforces it before the handler runs.
    public let access: RPCAccess
    /// The rate limit it is under, if any; an interceptor enforces it.
    public let rateLimit: RPCRateLimit?
    /// The interceptors that apply to this method, in order (set by the router).
    var interceptors: [any ServerInterceptor] = []
    /// Its calls' metrics (set by the router when it has a metrics factory).
    var metrics: CallMetrics?
    let handle: @Sendable (any RPCCall, ServerContext) async -> Void

    init(path: String, kind: RPCKind, access: RPCAccess, rateLimit: RPCRateLimit? = nil,
         handle: @escaping @Sendable (any RPCCall, ServerContext) async -> Void) {
        self.path = path
        self.kind = kind
        self.access = access
        self.rateLimit = rateLimit
        self.handle = handle
    }

    /// `/package.Service/Method`.
    public static func path(service: String, method: String) -> String { "/\(service)/\(method)" }

    /// Runs one call: the interceptors in order (the first to refuse ends the call with its
    /// status), then the handler with the context they handed on.
    func body(_ call: any RPCCall) async {
        guard !interceptors.isEmpty else { return await handle(call, call.context) }
        var context = call.context
        do {
            for interceptor in interceptors { try await interceptor.intercept(&context, method: self) }
        } catch {
            call.finish(error: error)
            return
        }
        await handle(call, context)
    }

    public static func unary<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String, access: RPCAccess = .anyone, rateLimit: RPCRateLimit? = nil,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .unary, access: access, rateLimit: rateLimit) { call, context in
            do {
                let request = try Request.decodeRequest(try call.singleRequest())
                let response = try await handler(request, context)
                call.finish(with: response)
            } catch {
                call.finish(error: error)
            }
        }
    }

    public static func clientStreaming<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String, access: RPCAccess = .anyone,
        _ handler: @escaping @Sendable (RequestStream<Request>, ServerContext) async throws -> Response
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .clientStreaming, access: access) { call, context in
            do {
                let response = try await handler(RequestStream(call: call), context)
                call.finish(with: response)
            } catch {
                call.finish(error: error)
            }
        }
    }

    public static func serverStreaming<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String, access: RPCAccess = .anyone,
        _ handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .serverStreaming, access: access) { call, context in
            do {
                let request = try Request.decodeRequest(try call.singleRequest())
                try await handler(request, ResponseWriter(call: call), context)
                call.finish(error: nil)
            } catch {
                call.finish(error: error)
            }
        }
    }

    public static func bidirectionalStreaming<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String, access: RPCAccess = .anyone,
        _ handler: @escaping @Sendable (RequestStream<Request>, ResponseWriter<Response>, ServerContext) async throws
            -> Void
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .bidirectionalStreaming, access: access) { call, context in
            do {
                try await handler(RequestStream(call: call), ResponseWriter(call: call), context)
                call.finish(error: nil)
            } catch {
                call.finish(error: error)
            }
        }
    }
}
