import ArgumentParser
import RPCServer

/// `tally token`: mints an end user's session token for testing (signed with the server's
/// session secret; presence streams present it in `authorization: Bearer`).
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mint an end user's session token (JWT, HS256) for testing.")

    @Option(help: "The user the token names (its sub).") var user: String
    @Option(help: "How long the token is valid: e.g. 24h, 30m, 90s.") var ttl: String = "24h"
    @Option(help: "The secret tokens are signed with (env TALLY_SESSION_SECRET).") var sessionSecret: String?

    func run() async throws {
        guard let lifetime = Keys.duration(ttl), lifetime > .zero else { throw ValidationError("--ttl takes e.g. 24h, 90m or 30s, got \(ttl)") }
        guard !user.isEmpty else { throw ValidationError("--user must not be empty") }
        guard let secret = try PresenceSettings.secret(sessionSecret, Environment()) else {
            throw ValidationError("token needs the session secret (--session-secret or TALLY_SESSION_SECRET)")
        }
        print(try await SessionTokens(secret: secret).mint(user: user, lifetime: lifetime))
    }
}
