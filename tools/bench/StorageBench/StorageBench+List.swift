import ArgumentParser

extension StorageBench {
    /// One subcommand per engine; each lives in its own file.
    static let benchmarks: [any ParsableCommand.Type] = [
        PostgresBench.self,
        RateLimitBench.self,
        QueueBench.self,
        RateLimitHammer.self,
        QueueHold.self,
    ]
}
