import Foundation
public import Logging
public import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle

/// The operator's HTTP/1.1 port (`--metrics-port`): `GET /metrics` (Prometheus text),
/// `GET /healthz` (the process answers) and `GET /readyz` (its dependencies are up and it is not
/// draining: 200, else 503), with JSON bodies naming the instance, its pid, memory and each
/// dependency's state, for load balancers and orchestrators that do not speak gRPC health.
/// SwiftNIO's HTTP/1 codec parses the requests.
public struct OperationsEndpoint: Service {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var instanceID: String

        public init(host: String, port: Int, instanceID: String) {
            self.host = host
            self.port = port
            self.instanceID = instanceID
        }
    }

    let configuration: Configuration
    let metrics: MetricsRegistry
    let health: HealthStatusBoard
    let group: any EventLoopGroup
    let logger: Logger

    public init(configuration: Configuration, metrics: MetricsRegistry, health: HealthStatusBoard, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.health = health
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        let responder = ProbeResponder(metrics: metrics, health: health, instanceID: configuration.instanceID)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(HTTPProbeHandler(responder: responder))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        logger.notice("operations endpoint listening", metadata: [
            "address": "\(configuration.host):\(channel.localAddress?.port ?? configuration.port)", "paths": "/metrics /healthz /readyz",
        ])
        // Serves through the gRPC server's drain (it stops later: services stop in reverse
        // order), so `/readyz` says 503 while draining.
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// What each path answers.
struct ProbeResponder: Sendable {
    let metrics: MetricsRegistry
    let health: HealthStatusBoard
    let instanceID: String
    let startedAt = ContinuousClock.now

    struct Response {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
    }

    func respond(method: HTTPMethod, path: String) async -> Response {
        guard method == .GET || method == .HEAD else {
            return Response(status: .methodNotAllowed, contentType: "text/plain", body: Array("GET only\n".utf8))
        }
        switch path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path {
        case "/metrics":
            return Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: await metrics.exposition())
        case "/healthz":
            return json(.ok, status: "ok", dependencies: nil)
        case "/readyz":
            let dependencies = ["redis": health.status(of: "tally.redis"), "postgres": health.status(of: "tally.postgres")]
                .compactMapValues { $0 }
            let serving = health.status(of: "") == .serving
            let ready = serving && dependencies.values.allSatisfy { $0 == .serving }
            return json(ready ? .ok : .serviceUnavailable, status: ready ? "ready" : (serving ? "degraded" : "draining"),
                        dependencies: dependencies.mapValues { $0 == .serving ? "up" : "down" })
        default:
            return Response(status: .notFound, contentType: "text/plain", body: Array("not found; try /metrics, /healthz or /readyz\n".utf8))
        }
    }

    private func json(_ code: HTTPResponseStatus, status: String, dependencies: [String: String]?) -> Response {
        var body: [String: Any] = [
            "status": status, "instance": instanceID, "pid": Int(getpid()),
            "uptime_seconds": (ContinuousClock.now - startedAt).components.seconds,
        ]
        for (name, value) in ProcessFigures.read() { body[name] = value }
        if let dependencies { body["dependencies"] = dependencies }
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: code, contentType: "application/json", body: Array(data) + [UInt8(ascii: "\n")])
    }
}

/// One request at a time per connection (keep-alive honoured): the answer is computed off the
/// event loop (a scrape reads Redis and Postgres) and written back on it.
final class HTTPProbeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: ProbeResponder
    private var head: HTTPRequestHead?

    init(responder: ProbeResponder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            Task { [responder] in
                let response = await responder.respond(method: head.method, path: head.uri)
                loop.execute {
                    let (handler, context) = bound.value
                    handler.write(response, for: head, context: context)
                }
            }
        }
    }

    private func write(_ response: ProbeResponder.Response, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in channel.value.close(promise: nil) }
        }
    }
}
