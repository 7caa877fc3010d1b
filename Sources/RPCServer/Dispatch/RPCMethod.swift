public import Codec

/// One method the server can dispatch to: its path, shape and a type-erased body that decodes
/// requests, runs the typed handler and encodes responses.
public struct RPCMethod: Sendable {
    public let path: String
    public let kind: RPCKind
    let body: @Sendable (any RPCCall) async -> Void

    /// `/package.Service/Method`.
    public static func path(service: String, method: String) -> String { "/\(service)/\(method)" }

    public static func unary<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .unary) { call in
            do {
                let request = try await receiveSingle(Request.self, call)
                let response = try await handler(request, call.context)
                call.finish(with: response, trailers: call.context.response.trailing)
            } catch {
                call.finish(error: error, trailers: call.context.response.trailing)
            }
        }
    }

    public static func clientStreaming<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String,
        _ handler: @escaping @Sendable (RequestStream<Request>, ServerContext) async throws -> Response
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .clientStreaming) { call in
            do {
                let response = try await handler(RequestStream(call: call), call.context)
                call.finish(with: response, trailers: call.context.response.trailing)
            } catch {
                call.finish(error: error, trailers: call.context.response.trailing)
            }
        }
    }

    public static func serverStreaming<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String,
        _ handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .serverStreaming) { call in
            do {
                let request = try await receiveSingle(Request.self, call)
                try await handler(request, ResponseWriter(call: call), call.context)
                call.finish(error: nil, trailers: call.context.response.trailing)
            } catch {
                call.finish(error: error, trailers: call.context.response.trailing)
            }
        }
    }

    public static func bidirectionalStreaming<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String,
        _ handler: @escaping @Sendable (RequestStream<Request>, ResponseWriter<Response>, ServerContext) async throws
            -> Void
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .bidirectionalStreaming) { call in
            do {
                try await handler(RequestStream(call: call), ResponseWriter(call: call), call.context)
                call.finish(error: nil, trailers: call.context.response.trailing)
            } catch {
                call.finish(error: error, trailers: call.context.response.trailing)
            }
        }
    }

    /// The one request of a unary or server-streaming call; anything but exactly one message
    /// is a protocol violation.
    private static func receiveSingle<Request: ProtobufMessage>(
        _: Request.Type, _ call: any RPCCall
    ) async throws -> Request {
        guard let payload = try await call.receive() else {
            throw RPCError(.internalError, "grpc: client sent no request message for a unary request")
        }
        let request = try Request.decodeRequest(payload)
        guard try await call.receive() == nil else {
            throw RPCError(.internalError, "grpc: client sent more than one request message for a unary request")
        }
        return request
    }
}
