import ArgumentParser
import Codec
import Foundation
import GRPCClient
import NIOPosix

/// `tally stats`: a running instance's `AdminService.Stats` (and `TopupStats`, `NotificationStats`, and its calls per
/// method from `Metrics`: the numbers `/metrics` serves), as tables or JSON, once or
/// every `--interval-ms` with `--watch`.
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a running instance's stats (AdminService.Stats).")

    @Option(help: "The instance's address (env TALLY_HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "The instance's port (env TALLY_PORT, default 50051).")
    var port: Int?

    @Option(help: "The admin key (env ADMIN_KEY).")
    var adminKey: String?

    @Flag(help: "One JSON object per report instead of tables.")
    var json = false

    @Flag(help: "Report again every --interval-ms until interrupted.")
    var watch = false

    @Option(help: "Time between reports with --watch, in ms (default 2000).")
    var intervalMs = 2000

    func run() async throws {
        let env = Environment()
        let host = env.string(self.host, "TALLY_HOST") ?? "127.0.0.1"
        let port = try env.int(self.port, "TALLY_PORT", default: 50051, range: 1...65535)
        guard let key = env.string(adminKey, "ADMIN_KEY") else { throw SettingsError("stats needs the admin key (--admin-key or ADMIN_KEY)") }
        guard intervalMs > 0 else { throw SettingsError("--interval-ms must be positive") }
        let group = MultiThreadedEventLoopGroup.singleton
        let connection: GRPCConnection
        do {
            connection = try await GRPCConnection.connect(GRPCClientConfiguration(host: host, port: port), group: group)
        } catch {
            throw SettingsError("cannot reach tally at \(host):\(port): \(error)")
        }
        do {
            repeat {
                let stats = try await connection.unary(
                    "/tally.v1.AdminService/Stats", Tally_V1_StatsRequest(), as: Tally_V1_StatsResponse.self,
                    metadata: ["x-admin-key": .string(key)], timeout: .seconds(10)
                ).message
                // Instances without the product (no database) answer UNIMPLEMENTED: no top-ups section.
                let topups = try? await connection.unary(
                    "/tally.v1.AdminService/TopupStats", Tally_V1_TopupStatsRequest(), as: Tally_V1_TopupStatsResponse.self,
                    metadata: ["x-admin-key": .string(key)], timeout: .seconds(10)
                ).message
                let notifications = try? await connection.unary(
                    "/tally.v1.AdminService/NotificationStats", Tally_V1_NotificationStatsRequest(),
                    as: Tally_V1_NotificationStatsResponse.self, metadata: ["x-admin-key": .string(key)], timeout: .seconds(10)
                ).message
                var callMetrics = Tally_V1_MetricsRequest()
                callMetrics.prefix = "grpc_server_call_duration"
                let metrics = try await connection.unary(
                    "/tally.v1.AdminService/Metrics", callMetrics,
                    as: Tally_V1_MetricsResponse.self, metadata: ["x-admin-key": .string(key)], timeout: .seconds(10)
                ).message
                let calls = CallsReport(metrics.metrics)
                print(json ? try StatsReport.json(stats, topups: topups, notifications: notifications, calls: calls)
                           : StatsReport.table(stats, topups: topups, notifications: notifications, calls: calls) + (watch ? "\n" : ""))
                if watch { try await Task.sleep(for: .milliseconds(intervalMs)) }
            } while watch
        } catch let error as CallError {
            await connection.close()
            throw SettingsError("stats failed: \(error)")
        }
        await connection.close()
    }
}
