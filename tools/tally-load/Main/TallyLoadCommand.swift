import ArgumentParser
import Codec
import GRPCClient
import LoadKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `tally-load`: drives any Tally RPC over the wire and reports throughput, latency and
/// status codes. Exit codes: 0 success; 1 error rate above `--max-error-rate`; 2 target
/// unreachable; 64 usage error. `TallyLoadMain` runs it (or the presence load).
struct TallyLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-load",
        abstract: "Load generator for every Tally RPC (unary and streaming) over real gRPC.",
        discussion: """
            Examples:
              tally-load bench.v1.Echo/Echo -n 100000 -c 512 --connections 16
              tally-load tally.v1.EventService/Track -z 30s --rps 2000 --batch-size 20 --users 50000
              tally-load tally.v1.LeaderboardService/Rank -d '{"board_id":"global","user_id":"{{randomUser}}"}'
              tally-load grpc.health.v1.Health/Watch --stream-messages 1 -n 100
              tally-load tally.v1.TopupService/Topup -H "x-api-key: $KEY" --retry-share 0.1 -n 2000 -c 20
              tally-load --scenario mix.json -z 1m -c 200 --format json

            Presence (delivery latency and lost changes over many streams; `tally-load presence --help`):
              tally-load presence --streams 2000 --subscriptions 10 --changes-per-sec 2000 -z 30s --target 127.0.0.1:50051,127.0.0.1:50052

            Templates (-d/-D, scenario "data") are proto3 JSON with generators: {{seq}} {{msg}} {{uuid}} {{runId}} {{now}}
            {{randomUser}} {{randomInt A B}} {{randomScore}} {{randomBytes N}} {{randomString N}} {{randomBool}}
            {{pick A B ...}} {{eventType}} {{phone}} {{phone +49151}} {{answer}} {{itemDiv M}} {{itemMod M}}; an array starting with "{{repeat N}}" (or "{{repeat}}"
            for --batch-size) repeats its next element. Streams take an array of messages (the last one repeats).

            Exit codes: 0 ok, 1 error rate above --max-error-rate (default 0: any failed call fails the run),
            2 target unreachable, 64 usage error.
            """)

    @Argument(help: "The RPC, e.g. tally.v1.EventService/Track (omit with --scenario).")
    var rpc: String?

    @Option(name: .long, help: "Server address host:port.")
    var target = "127.0.0.1:50051"

    @Option(name: [.customShort("n"), .long], help: "Measured calls in total (default 200 unless -z).")
    var requests: Int?

    @Option(name: [.customShort("z"), .long], help: "Measure for this long instead of -n (e.g. 30s, 2m).")
    var duration: String?

    @Option(name: [.customShort("c"), .long], help: "Calls in flight at once over all connections (default 50, or connections x --streams).")
    var concurrency: Int?

    @Option(help: "HTTP/2 connections.")
    var connections = 1

    @Option(help: "Calls in flight per connection (sets -c to connections x streams).")
    var streams: Int?

    @Option(help: "Event loop threads (default: min(connections, CPUs)).")
    var threads: Int?

    @Option(help: "Open loop: calls per second over all connections, latency measured from each call's scheduled time.")
    var rps: Double?

    @Option(help: "Unmeasured load before the measured phase (e.g. 2s).")
    var warmup: String?

    @Option(name: .customLong("ramp-up"), help: "Start workers (closed loop) or raise the rate (open loop) over this time.")
    var rampUp: String?

    @Option(help: "User population for {{randomUser}}.")
    var users = 10_000

    @Option(name: .customLong("batch-size"), help: "Elements of a \"{{repeat}}\" array (events per Track, answers per chunk).")
    var batchSize = 10

    @Option(name: .customLong("stream-messages"), help: "Client/bidi streams: messages sent per stream (default 10). Server streams: responses read before ending the stream (default: until the server ends it).")
    var streamMessages: Int?

    @Option(name: .customLong("stream-interval"), help: "Pause between a stream's messages (e.g. 100ms).")
    var streamInterval: String?

    @Option(name: [.customShort("d"), .long], help: "Request template as JSON.")
    var data: String?

    @Option(name: [.customShort("D"), .customLong("data-file")], help: "File with the request template.")
    var dataFile: String?

    @Option(name: [.customShort("H"), .customLong("header")], help: "Request metadata key:value (repeatable).")
    var headers: [String] = []

    @Option(name: .customLong("retry-share"), help: "Unary calls: the share (0 to below 1) that resend an earlier call's request whole (same idempotency key), many while it is still in flight.")
    var retryShare = 0.0

    @Option(name: .customLong("count-field"), help: "Unary responses: count those whose top-level bool or integer field of this name is set (RPCs without it ignore it).")
    var countField = "replayed"

    @Option(help: "Scenario file: a weighted mix of RPCs (JSON).")
    var scenario: String?

    @Option(help: "Per-call deadline (grpc-timeout), e.g. 2s.")
    var timeout: String?

    @Option(name: .customLong("connect-timeout"), help: "Time allowed to connect (TCP, TLS, HTTP/2 SETTINGS).")
    var connectTimeout = "5s"

    @Flag(help: "Use TLS (ALPN h2).")
    var tls = false

    @Option(help: "PEM file of CA certificates to trust (implies --tls).")
    var cacert: String?

    @Flag(help: "Skip certificate verification (implies --tls; test servers only).")
    var insecure = false

    @Option(name: .customLong("server-name"), help: "TLS server name (SNI), default the target host.")
    var serverName: String?

    @Option(help: "Report format: text or json.")
    var format = "text"

    @Option(name: .customLong("max-error-rate"), help: "Largest share of failed calls (0...1) that still exits 0.")
    var maxErrorRate = 0.0

    @Option(help: "Seed of the request data generators.")
    var seed: UInt64 = 0x7A11_7A11

    @Flag(help: "List the RPCs and their call shapes, then exit.")
    var list = false

    @Flag(name: .customLong("show-template"), help: "Print the RPC's built-in request template, then exit.")
    var showTemplate = false

    func validate() throws {
        if list { return }
        if rpc == nil && scenario == nil { throw ValidationError("give an RPC (e.g. bench.v1.Echo/Echo) or --scenario FILE") }
        if rpc != nil && scenario != nil { throw ValidationError("give an RPC or --scenario, not both") }
        if showTemplate { return }
        if requests != nil && duration != nil { throw ValidationError("--requests (-n) and --duration (-z) exclude each other") }
        if let requests, requests < 1 { throw ValidationError("--requests (-n) must be at least 1, got \(requests)") }
        if let duration { _ = try Self.duration(duration, flag: "--duration (-z)", positive: true) }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency (-c) must be at least 1, got \(concurrency)") }
        if connections < 1 || connections > 10_000 { throw ValidationError("--connections must be 1...10000, got \(connections)") }
        if let streams {
            if streams < 1 { throw ValidationError("--streams must be at least 1, got \(streams)") }
            if let concurrency, concurrency != connections * streams {
                throw ValidationError("-c \(concurrency) disagrees with --connections \(connections) x --streams \(streams); give one of them")
            }
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if let rps, !(rps > 0 && rps.isFinite) { throw ValidationError("--rps must be a positive number, got \(rps)") }
        if let warmup { _ = try Self.duration(warmup, flag: "--warmup") }
        if let rampUp { _ = try Self.duration(rampUp, flag: "--ramp-up") }
        if users < 1 { throw ValidationError("--users must be at least 1, got \(users)") }
        if batchSize < 0 || batchSize > 100_000 { throw ValidationError("--batch-size must be 0...100000, got \(batchSize)") }
        if let streamMessages, streamMessages < 1 { throw ValidationError("--stream-messages must be at least 1, got \(streamMessages)") }
        if let streamInterval { _ = try Self.duration(streamInterval, flag: "--stream-interval") }
        if data != nil && dataFile != nil { throw ValidationError("-d and -D exclude each other") }
        if scenario != nil && (data != nil || dataFile != nil) { throw ValidationError("-d/-D do not apply to --scenario (put \"data\" in the file)") }
        for header in headers { _ = try Self.header(header) }
        if !(0..<1).contains(retryShare) { throw ValidationError("--retry-share must be at least 0 and below 1, got \(retryShare)") }
        if let timeout { _ = try Self.duration(timeout, flag: "--timeout", positive: true) }
        _ = try Self.duration(connectTimeout, flag: "--connect-timeout", positive: true)
        _ = try Self.target(target)
        if format != "text" && format != "json" { throw ValidationError("--format must be text or json, got \"\(format)\"") }
        if !(0...1).contains(maxErrorRate) { throw ValidationError("--max-error-rate must be within 0...1, got \(maxErrorRate)") }
    }

    func run() async throws {
        let catalog = RPCCatalog.standard
        if list {
            for rpc in catalog.rpcs { print("\(rpc.name)  \(rpc.kind)  \(rpc.input) -> \(rpc.output)") }
            return
        }
        let configuration: LoadConfiguration
        do throws(LoadError) {
            if showTemplate, let rpc {
                print(DefaultTemplates.text(for: try catalog.rpc(named: rpc)))
                return
            }
            configuration = try makeConfiguration(catalog: catalog)
        } catch {
            throw ValidationError(error.description)
        }
        let isTTY = isatty(STDERR_FILENO) == 1
        let runner = LoadRunner(configuration: configuration)
        let result: LoadResult
        do {
            result = try await runner.run(progress: isTTY ? Self.printProgress : nil)
        } catch {
            if isTTY { Self.clearProgress() }
            Self.printError("tally-load: \(error.description)")
            throw ExitCode(2)
        }
        if isTTY { Self.clearProgress() }
        if format == "json" {
            print(result.jsonReport(maxErrorRate: maxErrorRate).serialized(indent: 2))
        } else {
            print(result.textReport())
        }
        if result.errorRate > maxErrorRate {
            Self.printError(
                "tally-load: error rate \(result.errorRate) is above --max-error-rate \(maxErrorRate)")
            throw ExitCode(1)
        }
    }

    func makeConfiguration(catalog: RPCCatalog) throws(LoadError) -> LoadConfiguration {
        let workloads: [Workload]
        if let scenario {
            let text = try Self.read(scenario, flag: "--scenario")
            let folder = scenario.contains("/") ? String(scenario[..<scenario.lastIndex(of: "/")!]) : "."
            workloads = try Scenario(text: text, catalog: catalog) { path throws(LoadError) in
                try Self.read(path.hasPrefix("/") ? path : "\(folder)/\(path)", flag: "data_file")
            }.workloads
        } else {
            let description = try catalog.rpc(named: rpc!)
            let requestData: RequestData
            if let data {
                requestData = try Self.labelled("-d") { () throws(LoadError) in try RequestData(text: data, rpc: description, schema: catalog.schema) }
            } else if let dataFile {
                let text = try Self.read(dataFile, flag: "-D")
                requestData = try Self.labelled("-D \(dataFile)") { () throws(LoadError) in
                    try RequestData(text: text, rpc: description, schema: catalog.schema)
                }
            } else {
                requestData = try RequestData.builtIn(for: description, schema: catalog.schema)
            }
            workloads = [Workload(rpc: description, data: requestData)]
        }
        // One dry encoding per workload so a template that cannot encode is a usage error now.
        var context = GeneratorContext(seed: seed, users: users, batchSize: batchSize)
        for workload in workloads {
            for index in workload.data.templates.indices {
                context.messageIndex = index + 1
                _ = try Self.labelled(workload.rpc.name) { () throws(LoadError) in try workload.data.encode(&context) }
            }
        }
        let (host, port) = try! Self.target(target)
        var metadata = Metadata()
        for header in headers {
            let (key, value) = try! Self.header(header)
            metadata.add(key, value)
        }
        let useTLS = tls || cacert != nil || insecure
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return LoadConfiguration(
            host: host, port: port, workloads: workloads,
            stop: duration.map { .duration(try! Self.duration($0, flag: "")) } ?? .requests(requests ?? 200),
            concurrency: concurrency ?? streams.map { $0 * connections } ?? 50, connections: connections,
            threads: threads ?? max(1, min(connections, cpus)), rate: rps,
            warmup: warmup.map { try! Self.duration($0, flag: "") } ?? .zero,
            rampUp: rampUp.map { try! Self.duration($0, flag: "") } ?? .zero,
            users: users, batchSize: batchSize, streamMessages: streamMessages,
            streamInterval: streamInterval.map { try! Self.duration($0, flag: "") }, metadata: metadata,
            retryShare: retryShare, countedField: countField.isEmpty ? nil : countField,
            timeout: timeout.map { try! Self.duration($0, flag: "") },
            tls: useTLS ? GRPCClientConfiguration.TLS(caCertificatePath: cacert, insecure: insecure, serverName: serverName) : nil,
            connectTimeout: try! Self.duration(connectTimeout, flag: ""), seed: seed)
    }
}
