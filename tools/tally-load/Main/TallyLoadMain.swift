import ArgumentParser

/// `tally-load`: the RPC load (`TallyLoadCommand`), or with `presence` first the presence load
/// (`TallyLoadPresenceCommand`). Not an ArgumentParser subcommand: the root command is parsed
/// before its subcommands, so its positional RPC and its flags of the same names (--target,
/// --streams, --ramp-up, -z ...) would take the presence load's arguments.
@main
enum TallyLoadMain {
    static let presence = "presence"

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let isPresence = arguments.first == presence
        do {
            var command = try parse(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if isPresence {
                TallyLoadPresenceCommand.exit(withError: error)
            } else {
                TallyLoadCommand.exit(withError: error)
            }
        }
    }

    /// The command `arguments` (without the program name) describe.
    static func parse(_ arguments: [String]) throws -> any ParsableCommand {
        if arguments.first == presence {
            return try TallyLoadPresenceCommand.parseAsRoot(Array(arguments.dropFirst()))
        }
        return try TallyLoadCommand.parseAsRoot(arguments)
    }
}
