import ArgumentParser
import Foundation
import RPCServer

/// The gRPC server's settings: address, limits, keepalive, shutdown, TLS.
struct ServerSettings: ParsableArguments {
    @Option(help: "Address to bind (env TALLY_HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to bind; 0 picks a free one (env TALLY_PORT, default 50051).")
    var port: Int?

    @Option(help: "Event loop threads (env TALLY_EVENT_LOOPS, default: CPUs in this process's affinity mask).")
    var eventLoops: Int?

    @Option(help: "Largest request message in bytes; larger ones get RESOURCE_EXHAUSTED (env TALLY_MAX_RECV_MESSAGE_BYTES, default 4194304).")
    var maxReceiveMessageBytes: Int?

    @Option(help: "Concurrent streams per connection, advertised in SETTINGS (env TALLY_MAX_CONCURRENT_STREAMS, default 1000).")
    var maxConcurrentStreams: Int?

    @Option(help: "Open connections per process; more get GOAWAY (env TALLY_MAX_CONNECTIONS, default 10000).")
    var maxConnections: Int?

    @Option(help: "Request header list size limit in bytes (env TALLY_MAX_HEADER_BYTES, default 16384).")
    var maxHeaderBytes: Int?

    @Option(help: "Deadline for unary and client-streaming calls without grpc-timeout, in ms; 0 for none (env TALLY_DEFAULT_DEADLINE_MS, default 60000).")
    var defaultDeadlineMs: Int?

    @Option(help: "Deadline for server- and bidi-streaming calls without grpc-timeout, in ms; 0 for none, as long-lived streams need (env TALLY_DEFAULT_STREAM_DEADLINE_MS, default 0).")
    var defaultStreamDeadlineMs: Int?

    @Option(help: "Send a keepalive PING after this much connection idle time, in ms; 0 for never (env TALLY_KEEPALIVE_MS, default 7200000).")
    var keepaliveMs: Int?

    @Option(help: "Close a connection whose keepalive PING is not acknowledged within this time, in ms (env TALLY_KEEPALIVE_TIMEOUT_MS, default 20000).")
    var keepaliveTimeoutMs: Int?

    @Option(help: "Close connections with no open stream after this long, in ms; 0 for never (env TALLY_MAX_CONNECTION_IDLE_MS, default 0).")
    var maxConnectionIdleMs: Int?

    @Option(help: "Client PINGs closer together than this count as strikes (more than 2 get GOAWAY too_many_pings), in ms (env TALLY_KEEPALIVE_MIN_PING_MS, default 300000).")
    var keepaliveMinPingMs: Int?

    @Flag(help: "Let clients send keepalive PINGs while they have no call open (env TALLY_KEEPALIVE_PERMIT_WITHOUT_CALLS=1).")
    var keepalivePermitWithoutCalls = false

    @Option(help: "GOAWAY connections older than this (±10% jitter) so clients rebalance, in ms; 0 for never (env TALLY_MAX_CONNECTION_AGE_MS, default 0).")
    var maxConnectionAgeMs: Int?

    @Option(help: "After the age's GOAWAY, how long calls in flight may finish, in ms; 0 for as long as they take (env TALLY_MAX_CONNECTION_AGE_GRACE_MS, default 0).")
    var maxConnectionAgeGraceMs: Int?

    @Option(help: "On SIGTERM/SIGINT, how long in-flight calls may finish before they are cancelled, in ms (env TALLY_SHUTDOWN_GRACE_MS, default 10000).")
    var shutdownGraceMs: Int?

    @Option(help: "TLS certificate chain, PEM (env TALLY_TLS_CERT); with --tls-key enables TLS.")
    var tlsCert: String?

    @Option(help: "TLS private key, PEM (env TALLY_TLS_KEY).")
    var tlsKey: String?

    func configuration(_ env: Environment) throws -> ServerConfiguration {
        var config = ServerConfiguration.defaults
        config.host = env.string(host, "TALLY_HOST") ?? config.host
        config.port = try env.int(port, "TALLY_PORT", default: config.port, range: 0...65535)
        config.eventLoops = try env.int(eventLoops, "TALLY_EVENT_LOOPS", default: config.eventLoops, range: 1...256)
        config.maxReceiveMessageSize = try env.int(
            maxReceiveMessageBytes, "TALLY_MAX_RECV_MESSAGE_BYTES", default: config.maxReceiveMessageSize, range: 1...(1 << 30))
        config.maxConcurrentStreams = try env.int(
            maxConcurrentStreams, "TALLY_MAX_CONCURRENT_STREAMS", default: config.maxConcurrentStreams, range: 1...(1 << 31 - 1))
        config.maxConnections = try env.int(maxConnections, "TALLY_MAX_CONNECTIONS", default: config.maxConnections, range: 1...1_000_000)
        config.maxHeaderListSize = try env.int(maxHeaderBytes, "TALLY_MAX_HEADER_BYTES", default: config.maxHeaderListSize, range: 1024...(1 << 24))
        config.defaultUnaryDeadline = try env.milliseconds(
            defaultDeadlineMs, "TALLY_DEFAULT_DEADLINE_MS", default: config.defaultUnaryDeadline, zeroMeansNone: true)
        config.defaultStreamingDeadline = try env.milliseconds(
            defaultStreamDeadlineMs, "TALLY_DEFAULT_STREAM_DEADLINE_MS", default: config.defaultStreamingDeadline, zeroMeansNone: true)
        config.keepaliveTime = try env.milliseconds(keepaliveMs, "TALLY_KEEPALIVE_MS", default: config.keepaliveTime, zeroMeansNone: true)
        config.keepaliveTimeout = try env.milliseconds(
            keepaliveTimeoutMs, "TALLY_KEEPALIVE_TIMEOUT_MS", default: config.keepaliveTimeout, range: 1...86_400_000) ?? config.keepaliveTimeout
        config.maxConnectionIdle = try env.milliseconds(
            maxConnectionIdleMs, "TALLY_MAX_CONNECTION_IDLE_MS", default: config.maxConnectionIdle, zeroMeansNone: true)
        config.minPingInterval = try env.milliseconds(
            keepaliveMinPingMs, "TALLY_KEEPALIVE_MIN_PING_MS", default: config.minPingInterval, range: 1...86_400_000) ?? config.minPingInterval
        config.permitKeepaliveWithoutCalls = env.flag(keepalivePermitWithoutCalls, "TALLY_KEEPALIVE_PERMIT_WITHOUT_CALLS")
        config.maxConnectionAge = try env.milliseconds(
            maxConnectionAgeMs, "TALLY_MAX_CONNECTION_AGE_MS", default: config.maxConnectionAge, zeroMeansNone: true)
        config.maxConnectionAgeGrace = try env.milliseconds(
            maxConnectionAgeGraceMs, "TALLY_MAX_CONNECTION_AGE_GRACE_MS", default: config.maxConnectionAgeGrace, zeroMeansNone: true)
        config.shutdownGracePeriod = try env.milliseconds(
            shutdownGraceMs, "TALLY_SHUTDOWN_GRACE_MS", default: config.shutdownGracePeriod) ?? config.shutdownGracePeriod
        switch (env.string(tlsCert, "TALLY_TLS_CERT"), env.string(tlsKey, "TALLY_TLS_KEY")) {
        case (let cert?, let key?):
            for (name, path) in [("TALLY_TLS_CERT", cert), ("TALLY_TLS_KEY", key)] where !FileManager.default.isReadableFile(atPath: path) {
                throw SettingsError("\(name): cannot read \(path)")
            }
            config.tls = .init(certificateChainPath: cert, privateKeyPath: key)
        case (nil, nil):
            config.tls = nil
        default:
            throw SettingsError("TLS needs both a certificate (TALLY_TLS_CERT) and a key (TALLY_TLS_KEY)")
        }
        return config
    }
}
