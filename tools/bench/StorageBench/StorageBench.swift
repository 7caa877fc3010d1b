import ArgumentParser

/// Benchmarks of the storage engines against the local PostgreSQL and Redis
/// (tools/services.sh), each printed beside a same-run baseline.
@main
struct StorageBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage-bench",
        abstract: "Benchmarks of Tally's storage engines (Postgres pool, Redis, queue, rate limiter).",
        subcommands: StorageBench.benchmarks
    )
}
