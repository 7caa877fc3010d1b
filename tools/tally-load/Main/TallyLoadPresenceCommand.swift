import ArgumentParser
import Codec
import GRPCClient
import LoadKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `tally-load presence`: many `PresenceService/Connect` streams, status changes at a fixed
/// rate, delivery latency and lost changes (see `PresenceRunner`).
struct TallyLoadPresenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-load presence",
        abstract: "Presence load: N Connect streams, each its own user watching K others; delivery latency and lost changes.",
        discussion: """
            Stream i says Hello as user-<first-user + i>, subscribes to --subscriptions random other users of the \
            population (--users), and sends a heartbeat every --heartbeat. Once every stream is open (opened evenly over \
            --ramp-up, each on its own connection unless --streams-per-connection), status changes (ONLINE, AWAY or BUSY) \
            go to random streams at --changes-per-sec in total for --duration; each carries its send time as its \
            activity ("t=<unix ns>"), so a subscriber's delivery latency is its receive time minus that.

            The server sends each stream at most one message per PRESENCE_INTERVAL_MS, coalesced per user: a change \
            replaced by a newer one before it went out is never delivered, so only delivered states are measured (each \
            once per subscriber). Give the server's interval as --interval: the bar is p99 <= interval + 100 ms, and \
            --interval x 2 + 0.5 s after the last change every subscriber's last received state of each user it watches \
            must equal that user's last sent one (lost changes; users of other processes are not checked).

            Several processes share one population with --first-user and --users (one process holds about as many \
            connections as its open-file limit, raised to the hard limit at start). Connection j goes to target \
            (first-user + j x streams-per-connection) mod targets: with one stream per connection, stream i to target i mod targets.

            Exit codes: 0 every stream opened and no change lost, 1 otherwise, 2 no stream opened, 64 usage error.
            """)

    @Option(name: .long, help: "Server address host:port (repeatable, or comma-separated).")
    var target: [String] = []

    @Option(help: "Streams this process opens.")
    var streams = 100

    @Option(name: .customLong("streams-per-connection"), help: "Streams sharing one HTTP/2 connection.")
    var streamsPerConnection = 1

    @Option(name: .customLong("first-user"), help: "User index of the first stream (several processes share one population).")
    var firstUser = 0

    @Option(help: "Population the subscriptions draw from (default: first-user + streams).")
    var users: Int?

    @Option(help: "Other users each stream subscribes to (distinct, random; at most 500).")
    var subscriptions = 10

    @Option(name: .customLong("changes-per-sec"), help: "Status changes per second over all streams of this process.")
    var changesPerSecond = 100.0

    @Option(help: "Time between a stream's heartbeats (the server's PRESENCE_TIMEOUT_MS is 45 s).")
    var heartbeat = "10s"

    @Option(name: [.customShort("z"), .long], help: "How long status changes are sent.")
    var duration = "30s"

    @Option(name: .customLong("ramp-up"), help: "Open the streams evenly over this time.")
    var rampUp = "5s"

    @Option(help: "The server's PRESENCE_INTERVAL_MS (the bar, and the wait before the lost-change check).")
    var interval = "2s"

    @Option(help: "Event loop threads (default: CPUs).")
    var threads: Int?

    @Option(name: .customLong("connect-timeout"), help: "Time allowed to connect (TCP, TLS, HTTP/2 SETTINGS).")
    var connectTimeout = "10s"

    @Option(name: [.customShort("H"), .customLong("header")], help: "Request metadata key:value (repeatable).")
    var headers: [String] = []

    @Flag(help: "Use TLS (ALPN h2).")
    var tls = false

    @Flag(help: "Skip certificate verification (implies --tls; test servers only).")
    var insecure = false

    @Option(help: "Report format: text or json.")
    var format = "text"

    @Option(help: "Seed of the subscriptions and changes.")
    var seed: UInt64 = 0x7A11_7A11

    func validate() throws {
        _ = try targets()
        if streams < 1 { throw ValidationError("--streams must be at least 1, got \(streams)") }
        if streamsPerConnection < 1 { throw ValidationError("--streams-per-connection must be at least 1, got \(streamsPerConnection)") }
        if firstUser < 0 { throw ValidationError("--first-user must be at least 0, got \(firstUser)") }
        if let users, users < firstUser + streams {
            throw ValidationError("--users \(users) is fewer than --first-user + --streams (\(firstUser + streams))")
        }
        if !(0...500).contains(subscriptions) { throw ValidationError("--subscriptions must be 0...500, got \(subscriptions)") }
        if !(changesPerSecond >= 0 && changesPerSecond.isFinite) {
            throw ValidationError("--changes-per-sec must be 0 or more, got \(changesPerSecond)")
        }
        _ = try TallyLoadCommand.duration(heartbeat, flag: "--heartbeat", positive: true)
        _ = try TallyLoadCommand.duration(duration, flag: "--duration (-z)", positive: true)
        _ = try TallyLoadCommand.duration(rampUp, flag: "--ramp-up")
        _ = try TallyLoadCommand.duration(interval, flag: "--interval", positive: true)
        _ = try TallyLoadCommand.duration(connectTimeout, flag: "--connect-timeout", positive: true)
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        for header in headers { _ = try TallyLoadCommand.header(header) }
        if format != "text" && format != "json" { throw ValidationError("--format must be text or json, got \"\(format)\"") }
    }

    /// `--target` values, each possibly a comma-separated list; the default server when none.
    func targets() throws -> [PresenceLoadConfiguration.Target] {
        let texts = target.flatMap { $0.split(separator: ",").map { String($0).trimmingSpaces } }.filter { !$0.isEmpty }
        return try (texts.isEmpty ? ["127.0.0.1:50051"] : texts).map {
            let (host, port) = try TallyLoadCommand.target($0)
            return PresenceLoadConfiguration.Target(host: host, port: port)
        }
    }

    func makeConfiguration() throws -> PresenceLoadConfiguration {
        var metadata = Metadata()
        for header in headers {
            let (key, value) = try TallyLoadCommand.header(header)
            metadata.add(key, value)
        }
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return PresenceLoadConfiguration(
            targets: try targets(), streams: streams, streamsPerConnection: streamsPerConnection, firstUser: firstUser,
            users: users, subscriptions: subscriptions, changesPerSecond: changesPerSecond,
            heartbeat: try TallyLoadCommand.duration(heartbeat, flag: "--heartbeat"),
            duration: try TallyLoadCommand.duration(duration, flag: "--duration"),
            rampUp: try TallyLoadCommand.duration(rampUp, flag: "--ramp-up"),
            interval: try TallyLoadCommand.duration(interval, flag: "--interval"), threads: threads ?? max(1, cpus),
            connectTimeout: try TallyLoadCommand.duration(connectTimeout, flag: "--connect-timeout"),
            tls: tls || insecure ? GRPCClientConfiguration.TLS(insecure: insecure) : nil, metadata: metadata, seed: seed)
    }

    func run() async throws {
        let configuration = try makeConfiguration()
        let limit = FileLimit.raiseToHard()
        // A connection is a descriptor, beside the loops' own few and stdio.
        if configuration.connections + 64 > limit {
            TallyLoadCommand.printError(
                "tally-load: \(configuration.connections) connections need more descriptors than the open-file limit \(limit) allows; "
                    + "split the streams over processes (--first-user)")
        }
        let isTTY = isatty(STDERR_FILENO) == 1
        let result: PresenceResult
        do {
            result = try await PresenceRunner(configuration: configuration).run(
                progress: isTTY ? Self.printProgress : nil,
                opened: { open, seconds in
                    // One line whatever stderr is: a benchmark waits for it before it samples the server.
                    TallyLoadCommand.printError(
                        "\(isTTY ? "\r\u{1B}[K" : "")tally-load: \(open) of \(configuration.streams) presence streams open after \(Double(Int(seconds * 10)) / 10) s")
                })
        } catch {
            TallyLoadCommand.printError("tally-load: \(error.description)")
            throw ExitCode(2)
        }
        if isTTY { TallyLoadCommand.clearProgress() }
        print(format == "json" ? result.jsonReport().serialized(indent: 2) : result.textReport())
        if !result.passed { throw ExitCode(1) }
    }

    @Sendable static func printProgress(_ progress: PresenceRunner.Progress) {
        TallyLoadCommand.writeStandardError(
            "\r[\(Int(progress.elapsed))s] \(progress.phase): \(progress.ready) streams ready, \(progress.ended) ended, "
                + "\(progress.changesSent) changes sent, \(progress.measured) deliveries   ")
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
