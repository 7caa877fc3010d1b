import Synchronization

/// A Lua script run atomically by Redis with `EVALSHA`.
///
/// The script is loaded (`SCRIPT LOAD`) on first use and its SHA1 remembered; when Redis
/// answers `NOSCRIPT` (restarted, or `SCRIPT FLUSH`) it is loaded again and the call
/// repeated, once. Every key a script touches is passed in `KEYS` and shares one hash tag
/// (`{...}`), so the same scripts run on Redis Cluster.
public final class RedisScript: Sendable {
    public let name: String
    public let source: String
    private let loadedSHA = Mutex<String?>(nil)

    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }

    var sha: String? { loadedSHA.withLock { $0 } }

    func remember(sha: String) {
        loadedSHA.withLock { $0 = sha }
    }
}
