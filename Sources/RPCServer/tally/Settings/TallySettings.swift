import ArgumentParser
import Domain
import Foundation
import Logging
import RPCServer
import Storage

/// Every setting of `tally serve`, each a flag and an environment variable (a flag wins),
/// read and validated here, in one place, before anything starts.
struct TallySettings: ParsableArguments {
    @OptionGroup(title: "Server") var server: ServerSettings
    @OptionGroup(title: "Storage") var storage: StorageSettings
    @OptionGroup(title: "Product") var product: ProductSettings

    @Option(help: "The key admin RPCs need in x-admin-key; without it they are refused (env ADMIN_KEY).")
    var adminKey: String?

    @Option(help: "This instance's name in AdminService stats (env TALLY_INSTANCE_ID, default <host name>-<pid>).")
    var instanceId: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env LOG_LEVEL, default info).")
    var logLevel: String?

    @Option(help: "Log lines as text or json, one object per line for log shippers (env LOG_FORMAT, default text).")
    var logFormat: String?

    @Flag(help: "Also serve bench.v1.Echo, the benchmark service (env TALLY_BENCH_ECHO=1).")
    var benchEcho = false

    @Flag(help: "Also serve grpc.testing.TestService, the server side of gRPC's interop test cases (env TALLY_INTEROP_TEST_SERVICE=1).")
    var interopTestService = false

    @Flag(help: "Do not apply database migrations at start (env TALLY_MIGRATE=0).")
    var noMigrate = false

    @Flag(help: "Record no per-call metrics (grpc_server_call_*), e.g. to measure what they cost (env TALLY_CALL_METRICS=0).")
    var noCallMetrics = false

    @Option(help: "HTTP/1.1 port of /metrics (Prometheus), /healthz and /readyz, on the server's address; off unless set (env TALLY_METRICS_PORT).")
    var metricsPort: Int?

    func configuration(_ env: Environment = Environment()) throws -> TallyConfiguration {
        let level = env.string(logLevel, "LOG_LEVEL") ?? "info"
        guard let logLevel = Logger.Level(rawValue: level) else {
            throw SettingsError("LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, got \"\(level)\"")
        }
        let format = env.string(logFormat, "LOG_FORMAT") ?? "text"
        guard let logOutput = LogOutput(rawValue: format) else {
            throw SettingsError("LOG_FORMAT must be text or json, got \"\(format)\"")
        }
        let stores = try storage.configuration(env)
        let instanceID = env.string(instanceId, "TALLY_INSTANCE_ID") ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        var product = try self.product.configuration(env)
        product.instanceID = instanceID
        return TallyConfiguration(
            server: try server.configuration(env),
            storage: stores.map { TallyConfiguration.Stores(primary: $0.primary, replica: $0.replica, reads: $0.reads, redis: $0.redis) },
            product: product,
            adminKey: env.string(adminKey, "ADMIN_KEY"),
            sessionSecret: try self.product.presence.secret(env),
            instanceID: instanceID,
            logLevel: logLevel,
            logOutput: logOutput,
            benchEcho: env.flag(benchEcho, "TALLY_BENCH_ECHO"),
            interopTestService: env.flag(interopTestService, "TALLY_INTEROP_TEST_SERVICE"),
            metricsPort: try env.optionalInt(metricsPort, "TALLY_METRICS_PORT", range: 0...65_535),
            callMetrics: !noCallMetrics && env.values["TALLY_CALL_METRICS"] != "0",
            migrateAtStart: !noMigrate && env.values["TALLY_MIGRATE"] != "0")
    }
}

/// What `tally serve` runs with, validated.
struct TallyConfiguration {
    struct Stores {
        var primary: PostgresConfiguration
        var replica: PostgresConfiguration?
        /// When reads use the replica (its lag bound and checks).
        var reads: PostgresDatabase.ReadPolicy
        var redis: RedisConfiguration
    }

    var server: ServerConfiguration
    /// Nil without DATABASE_URL and REDIS_URL: health, reflection and the benchmark only.
    var storage: Stores?
    var product: Product.Configuration
    var adminKey: String?
    /// End users' session tokens are signed with it; nil: presence trusts Hello.
    var sessionSecret: String?
    var instanceID: String
    var logLevel: Logger.Level
    var logOutput: LogOutput
    var benchEcho: Bool
    /// Whether grpc.testing.TestService (gRPC's interop test service) is served.
    var interopTestService: Bool
    /// The operations endpoint's port (nil: off).
    var metricsPort: Int?
    /// Whether calls are counted and timed per method (`grpc_server_call_*`).
    var callMetrics: Bool
    var migrateAtStart: Bool
}
