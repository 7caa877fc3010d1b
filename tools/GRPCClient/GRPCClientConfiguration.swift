/// Where and how a `GRPCConnection` connects, and the limits it enforces on responses.
public struct GRPCClientConfiguration: Sendable {
    /// Server host name or IP address.
    public var host: String
    /// Server port.
    public var port: Int
    /// TLS with ALPN `h2`; nil means plaintext HTTP/2 with prior knowledge (h2c).
    public var tls: TLS?
    /// How long the TCP connect, TLS handshake and the server's first SETTINGS may take together.
    public var connectTimeout: Duration
    /// Largest response message accepted; larger ones end the call with RESOURCE_EXHAUSTED.
    public var maxReceiveMessageSize: Int
    /// HTTP/2 stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). Credit is returned as
    /// the application reads messages, so a slow reader slows the server down.
    public var initialWindowSize: Int
    /// HTTP/2 connection receive window, shared by all streams.
    public var connectionWindowSize: Int
    /// `:authority`; defaults to `host:port`.
    public var authority: String?
    /// `user-agent` sent with every call.
    public var userAgent: String
    /// Request bytes buffered per stream above which `ClientCall.send` waits for the peer's
    /// flow-control credit to drain them.
    public var sendBufferHighWater: Int

    public struct TLS: Sendable, Hashable {
        /// PEM file with the CA certificates to trust; nil uses the system trust store.
        public var caCertificatePath: String?
        /// Skip certificate verification (self-signed test servers only).
        public var insecure: Bool
        /// SNI and certificate host name; defaults to `host` when that is not an IP address.
        public var serverName: String?

        public init(caCertificatePath: String? = nil, insecure: Bool = false, serverName: String? = nil) {
            self.caCertificatePath = caCertificatePath
            self.insecure = insecure
            self.serverName = serverName
        }
    }

    /// gRPC's defaults: 4 MiB max receive message, 1 MiB stream window, 16 MiB connection window.
    public init(
        host: String, port: Int, tls: TLS? = nil, connectTimeout: Duration = .seconds(5),
        maxReceiveMessageSize: Int = 4 * 1024 * 1024, initialWindowSize: Int = 1024 * 1024,
        connectionWindowSize: Int = 16 * 1024 * 1024, authority: String? = nil,
        userAgent: String = "tally-grpc-client/1.0", sendBufferHighWater: Int = 256 * 1024
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.maxReceiveMessageSize = maxReceiveMessageSize
        self.initialWindowSize = initialWindowSize
        self.connectionWindowSize = connectionWindowSize
        self.authority = authority
        self.userAgent = userAgent
        self.sendBufferHighWater = sendBufferHighWater
    }
}
