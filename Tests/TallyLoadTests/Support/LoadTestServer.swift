import Codec
import LoadKit
import Logging
import RPCServer

/// An in-process Tally server on 127.0.0.1 and a free port with the counting services and a
/// recording TopupService/Topup and a fake PresenceService/Connect (`FakePresenceService`);
/// every other RPC answers UNIMPLEMENTED.
struct LoadTestServer {
    let server: GRPCServer
    let port: Int
    let counts: ServerCounts
    let topups: TopupLedger

    static func with<R>(presence: FakePresenceHub = FakePresenceHub(), _ body: (LoadTestServer) async throws -> R) async throws -> R {
        var configuration = ServerConfiguration.defaults
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.eventLoops = 1
        configuration.shutdownGracePeriod = .seconds(5)
        let counts = ServerCounts()
        var router = RPCRouter()
        router.register(CountingServices(counts: counts))
        let topups = TopupLedger()
        router.register(RecordingTopupService(ledger: topups))
        router.register(FakePresenceService(hub: presence))
        var logger = Logger(label: "load-test")
        logger.logLevel = .critical
        let server = GRPCServer(configuration: configuration, router: router, logger: logger)
        let address = try await server.start()
        let running = LoadTestServer(server: server, port: address.port!, counts: counts, topups: topups)
        do {
            let result = try await body(running)
            await server.shutdown()
            return result
        } catch {
            await server.shutdown()
            throw error
        }
    }

    /// A run of `rpc` (built-in data unless `data` is given) against this server.
    func configuration(
        _ rpc: String, data: String? = nil, stop: LoadConfiguration.Stop = .requests(200), concurrency: Int = 8,
        connections: Int = 2, configure: (inout LoadConfiguration) -> Void = { _ in }
    ) throws -> LoadConfiguration {
        let catalog = RPCCatalog.standard
        let description = try catalog.rpc(named: rpc)
        let requestData =
            try data.map { try RequestData(text: $0, rpc: description, schema: catalog.schema) }
            ?? RequestData.builtIn(for: description, schema: catalog.schema)
        var configuration = LoadConfiguration(
            host: "127.0.0.1", port: port, workloads: [Workload(rpc: description, data: requestData)], stop: stop,
            concurrency: concurrency, connections: connections, threads: 2)
        configure(&configuration)
        return configuration
    }
}
