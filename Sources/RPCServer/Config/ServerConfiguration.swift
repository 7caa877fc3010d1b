/// Wire-level settings of the gRPC server. Every limit is configurable; each one, when hit,
/// is answered with a clear status or HTTP/2 error rather than silently.
public struct ServerConfiguration: Sendable {
    /// Address to bind; tests and local runs use loopback.
    public var host: String
    /// Port to bind; 0 picks a free one (read it back from the running server).
    public var port: Int
    /// Event loops (threads) serving connections; defaults to the CPUs this process may use.
    public var eventLoops: Int
    /// Largest request message accepted (RESOURCE_EXHAUSTED beyond), gRPC's default 4 MiB.
    public var maxReceiveMessageSize: Int
    /// Largest response message the server will send.
    public var maxSendMessageSize: Int
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to each client; streams past it are refused.
    public var maxConcurrentStreams: Int
    /// Open connections per process; further connections get GOAWAY and are closed.
    public var maxConnections: Int
    /// Total bytes of request header names and values per stream (SETTINGS_MAX_HEADER_LIST_SIZE).
    public var maxHeaderListSize: Int
    /// HTTP/2 stream-level receive window (SETTINGS_INITIAL_WINDOW_SIZE).
    public var initialStreamWindowSize: Int
    /// HTTP/2 connection-level receive window.
    public var connectionWindowSize: Int
    /// Buffered response bytes per stream above which `write` waits for the client.
    public var streamOutputHighWater: Int
    /// Deadline for unary and client-streaming calls that arrive without `grpc-timeout`.
    public var defaultUnaryDeadline: Duration?
    /// Deadline for server- and bidi-streaming calls that arrive without `grpc-timeout`; none by
    /// default, since such streams (events, Watch, presence) are meant to live long.
    public var defaultStreamingDeadline: Duration? = nil
    /// Keepalive: send a PING after this much idle time on a connection (nil: never).
    public var keepaliveTime: Duration?
    /// Keepalive: close the connection when a PING is not acknowledged within this time.
    public var keepaliveTimeout: Duration
    /// Client PINGs tolerated without any data sent in between; more get GOAWAY
    /// ENHANCE_YOUR_CALM "too_many_pings", as gRPC servers do.
    public var maxPingStrikes: Int
    /// Shortest interval between client PINGs that does not count as a strike.
    public var minPingInterval: Duration
    /// Whether clients may ping while they have no call open (gRPC's
    /// `permit_keepalive_without_calls`); when not, such a ping within two hours of the last
    /// counts as a strike, as grpc-go counts it.
    public var permitKeepaliveWithoutCalls = false
    /// Connections older than this (±10% jitter, so a fleet's connections do not all end at
    /// once) get GOAWAY, so clients reconnect and spread over instances behind a balancer
    /// (nil: never).
    public var maxConnectionAge: Duration? = nil
    /// After the age's GOAWAY, how long calls in flight may finish before they are cancelled
    /// (nil: as long as they take).
    public var maxConnectionAgeGrace: Duration? = nil
    /// Connections idle (no open streams) this long are closed with GOAWAY (nil: never).
    public var maxConnectionIdle: Duration?
    /// On shutdown, how long in-flight calls may run before they are cancelled.
    public var shutdownGracePeriod: Duration
    /// TLS certificate chain and private key (PEM paths); plaintext h2c when nil.
    public var tls: TLS?

    public struct TLS: Sendable, Hashable {
        public var certificateChainPath: String
        public var privateKeyPath: String

        public init(certificateChainPath: String, privateKeyPath: String) {
            self.certificateChainPath = certificateChainPath
            self.privateKeyPath = privateKeyPath
        }
    }

    /// Production defaults: gRPC's own where gRPC has one.
    public static var defaults: ServerConfiguration {
        ServerConfiguration(
            host: "127.0.0.1",
            port: 50051,
            eventLoops: CPUAffinity.availableCPUs,
            maxReceiveMessageSize: 4 * 1024 * 1024,
            maxSendMessageSize: 16 * 1024 * 1024,
            maxConcurrentStreams: 1000,
            maxConnections: 10_000,
            maxHeaderListSize: 16 * 1024,
            initialStreamWindowSize: 1024 * 1024,
            connectionWindowSize: 16 * 1024 * 1024,
            streamOutputHighWater: 256 * 1024,
            defaultUnaryDeadline: .seconds(60),
            keepaliveTime: .seconds(7200),
            keepaliveTimeout: .seconds(20),
            maxPingStrikes: 2,
            minPingInterval: .seconds(5 * 60),
            maxConnectionIdle: nil,
            shutdownGracePeriod: .seconds(10),
            tls: nil
        )
    }
}

extension ServerConfiguration {
    /// The deadline a call of `kind` gets when the client sends no `grpc-timeout`.
    public func defaultDeadline(for kind: RPCKind) -> Duration? {
        switch kind {
        case .unary, .clientStreaming: defaultUnaryDeadline
        case .serverStreaming, .bidirectionalStreaming: defaultStreamingDeadline
        }
    }
}
