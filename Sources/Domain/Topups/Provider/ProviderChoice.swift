import NIOCore

/// Which provider adapter calls operators (`TOPUP_PROVIDER`).
public enum ProviderChoice: Sendable, Hashable {
    /// In-process, deterministic (the default: `tally serve` works out of the box).
    case sandbox(latency: Duration)
    /// JSON over HTTP to `TOPUP_PROVIDER_URL`.
    case http(baseURL: String)

    func make(group: any EventLoopGroup) -> any TopupProvider {
        switch self {
        case .sandbox(let latency): SandboxProvider(latency: latency)
        case .http(let baseURL): HTTPTopupProvider(baseURL: baseURL, eventLoopGroup: group)
        }
    }
}
