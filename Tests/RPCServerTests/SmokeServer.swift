import Foundation
import Logging
import RPCServer
import Testing

@Test(.enabled(if: ProcessInfo.processInfo.environment["TALLY_SMOKE"] != nil))
func smokeServer() async throws {
    var router = RPCRouter()
    router.register(.unary("/bench.v1.Echo/Echo") { (request: RawMessage, _) in request })
    var config = ServerConfiguration.defaults
    config.port = 50070
    config.eventLoops = 1
    var logger = Logger(label: "smoke")
    logger.logLevel = .debug
    let server = GRPCServer(configuration: config, router: router, logger: logger)
    _ = try await server.start()
    try await Task.sleep(for: .seconds(Double(ProcessInfo.processInfo.environment["TALLY_SMOKE"]!)!))
    await server.shutdown()
}
