/// Where and how a `GRPCConnection` connects.
public struct GRPCClientConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// nil: plaintext HTTP/2 with prior knowledge (h2c).
    public var tls: TLS?
    public var connectTimeout: Duration
    /// A response message larger than this ends the call with RESOURCE_EXHAUSTED.
    public var maxReceiveMessageSize: Int
    /// Receive window per stream; credit returns as the caller reads messages.
    public var initialWindowSize: Int
    public var connectionWindowSize: Int
    /// `:authority`; defaults to host:port.
    public var authority: String?
    public var userAgent: String

    public struct TLS: Sendable {
        /// PEM file of the CA that signed the server's certificate; nil uses the system's roots.
        public var caCertificatePath: String?
        /// Skip certificate verification (self-signed test servers).
        public var insecure: Bool
        /// SNI and the name verified; defaults to the host.
        public var serverName: String?

        public init(caCertificatePath: String? = nil, insecure: Bool = false, serverName: String? = nil) {
            self.caCertificatePath = caCertificatePath
            self.insecure = insecure
            self.serverName = serverName
        }
    }

    public init(
        host: String, port: Int, tls: TLS? = nil, connectTimeout: Duration = .seconds(5),
        maxReceiveMessageSize: Int = 4 * 1024 * 1024, initialWindowSize: Int = 1 << 20,
        connectionWindowSize: Int = 16 << 20, authority: String? = nil, userAgent: String = "tally-grpc-client/1"
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
    }
}
