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
                let request = try Request.decodeRequest(try call.singleRequest())
                let response = try await handler(request, call.context)
                call.finish(with: response)
            } catch {
                call.finish(error: error)
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
                call.finish(with: response)
            } catch {
                call.finish(error: error)
            }
        }
    }

    public static func serverStreaming<Request: ProtobufMessage, Response: ProtobufMessage>(
        _ path: String,
        _ handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) -> RPCMethod {
        RPCMethod(path: path, kind: .serverStreaming) { call in
            do {
                let request = try Request.decodeRequest(try call.singleRequest())
                try await handler(request, ResponseWriter(call: call), call.context)
                call.finish(error: nil)
            } catch {
                call.finish(error: error)
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
                call.finish(error: nil)
            } catch {
                call.finish(error: error)
            }
        }
    }
}
