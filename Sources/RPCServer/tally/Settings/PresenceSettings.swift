import ArgumentParser
import Domain

/// Presence streams: session timeout, fan-out interval, limits, and end users' session secret.
struct PresenceSettings: ParsableArguments {
    @Option(help: "A presence session without a heartbeat this long is closed as OFFLINE; also the TTL of a device in Redis, in ms (env PRESENCE_TIMEOUT_MS, default 45000).")
    var presenceTimeoutMs: Int?

    @Option(help: "At most one presence message per stream per interval, changes coalesced per user, in ms (env PRESENCE_INTERVAL_MS, default 2000).")
    var presenceIntervalMs: Int?

    @Option(help: "Presence streams open on this instance at once (env PRESENCE_MAX_STREAMS, default 50000).")
    var presenceMaxStreams: Int?

    @Option(help: "Devices (streams) of one user online at once, over every instance (env PRESENCE_MAX_DEVICES, default 5).")
    var presenceMaxDevices: Int?

    @Option(help: "HS256 secret of end users' session tokens (JWT, sub = user id); without it presence trusts Hello.user_id (env TALLY_SESSION_SECRET).")
    var sessionSecret: String?

    func configuration(_ env: Environment) throws -> PresenceConfiguration {
        var presence = PresenceConfiguration.defaults
        presence.timeout = try env.milliseconds(
            presenceTimeoutMs, "PRESENCE_TIMEOUT_MS", default: presence.timeout, range: 100...3_600_000) ?? presence.timeout
        presence.interval = try env.milliseconds(
            presenceIntervalMs, "PRESENCE_INTERVAL_MS", default: presence.interval, range: 10...60_000) ?? presence.interval
        presence.maxStreams = try env.int(presenceMaxStreams, "PRESENCE_MAX_STREAMS", default: presence.maxStreams, range: 1...10_000_000)
        presence.maxDevices = try env.int(presenceMaxDevices, "PRESENCE_MAX_DEVICES", default: presence.maxDevices, range: 1...1000)
        return presence
    }

    /// The session secret, nil when none is set (development: presence trusts Hello).
    func secret(_ env: Environment) throws -> String? {
        try Self.secret(sessionSecret, env)
    }

    /// `--session-secret`, else TALLY_SESSION_SECRET; at least 32 bytes (the hash size).
    static func secret(_ flag: String?, _ env: Environment) throws -> String? {
        guard let secret = env.string(flag, "TALLY_SESSION_SECRET") else { return nil }
        guard secret.utf8.count >= 32 else { throw SettingsError("TALLY_SESSION_SECRET must be at least 32 bytes (HS256 key)") }
        return secret
    }
}
