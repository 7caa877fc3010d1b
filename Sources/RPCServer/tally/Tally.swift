import ArgumentParser

/// `tally`: serve the gRPC API, apply database migrations, or print live stats.
@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally: a gRPC backend for events, leaderboards, top-ups, quiz and presence.",
        discussion: """
            Every option can also be set with the environment variable named in its help \
            (a flag wins over the environment).
            """,
        subcommands: [Serve.self, Migrate.self, Stats.self, Keys.self, Token.self],
        defaultSubcommand: Serve.self
    )
}
