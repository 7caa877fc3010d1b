import GRPCClient
import NIOCore
import NIOPosix

/// Runs a load against one server: opens the connections, spreads the workers over them,
/// and collects what every call did.
///
/// Each worker runs its unary calls as a chain of completions on its connection's event loop
/// (`UnaryChain`), and its streaming calls in a task that prefers that loop as executor, so
/// starting a call, its completion and the bookkeeping stay on one thread (no hops), and the
/// workers of a loop share its statistics without contention.
public struct LoadRunner: Sendable {
    public let configuration: LoadConfiguration

    public init(configuration: LoadConfiguration) {
        self.configuration = configuration
    }

    /// What the progress line shows, read once a second while the run goes.
    public struct Progress: Sendable {
        /// Seconds since the start (warm-up included).
        public var elapsed: Double
        public var inWarmup: Bool
        public var completed: Int
        public var failed: Int
    }

    /// Runs to the stop condition; `progress` is called about once a second (from another
    /// task). Throws `LoadError.unreachable` when a connection cannot be made.
    public func run(progress: (@Sendable (Progress) -> Void)? = nil) async throws(LoadError) -> LoadResult {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        defer { group.shutdownGracefully { _ in } }
        let configuration = self.configuration
        let connections = try await connect(group: group)
        // One statistics object per event loop, shared by that loop's connections.
        var loopStatistics: [ObjectIdentifier: LoopStatistics] = [:]
        let statistics = connections.map { connection in
            let loop = ObjectIdentifier(connection.eventLoop)
            if let existing = loopStatistics[loop] { return existing }
            let created = LoopStatistics(workloads: configuration.workloads.count)
            loopStatistics[loop] = created
            return created
        }
        let control = RunControl(configuration: configuration, start: Monotonic.now())
        let plan = UnaryPlan(configuration: configuration)

        await withTaskGroup(of: Void.self) { tasks in
            for worker in 0..<configuration.concurrency {
                let slot = worker % connections.count
                let connection = connections[slot]
                let worker = Worker(
                    index: worker, configuration: configuration, connection: connection, statistics: statistics[slot],
                    control: control, plan: plan)
                tasks.addTask(executorPreference: connection.taskExecutor) {
                    await worker.run()
                }
            }
            if let progress {
                tasks.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        if Task.isCancelled { return }
                        let now = Monotonic.now()
                        progress(
                            Progress(
                                elapsed: Double(now - control.start) / 1e9, inWarmup: now < control.measureStart,
                                completed: control.completed.load(ordering: .relaxed), failed: control.failed.load(ordering: .relaxed)))
                    }
                }
            }
            // Workers end on their own; the progress task is cancelled once they have.
            var finishedWorkers = 0
            while await tasks.next() != nil {
                finishedWorkers += 1
                if finishedWorkers == configuration.concurrency { tasks.cancelAll() }
            }
        }

        for connection in connections { await connection.close() }
        var perWorkload = Array(repeating: RPCStatistics(), count: configuration.workloads.count)
        for loopStatistics in loopStatistics.values {
            for (index, rpcStatistics) in loopStatistics.snapshot.enumerated() { perWorkload[index].merge(rpcStatistics) }
        }
        let last = control.lastCompletion.load(ordering: .relaxed)
        let elapsed = last > control.measureStart ? Double(last - control.measureStart) / 1e9 : 0
        return LoadResult(
            rpcs: zip(configuration.workloads, perWorkload).map { LoadResult.RPCResult(rpc: $0.rpc, statistics: $1) },
            elapsed: elapsed, connections: connections.count, concurrency: configuration.concurrency,
            targetRate: configuration.rate,
            countedField: plan.responseFlags.contains { $0 != nil } ? configuration.countedField : nil)
    }

    private func connect(group: MultiThreadedEventLoopGroup) async throws(LoadError) -> [GRPCConnection] {
        var clientConfiguration = GRPCClientConfiguration(
            host: configuration.host, port: configuration.port, tls: configuration.tls,
            connectTimeout: configuration.connectTimeout)
        clientConfiguration.userAgent = "tally-load/1.0"
        let connectConfiguration = clientConfiguration
        let result: Result<[GRPCConnection], CallError> = await withTaskGroup(of: Result<GRPCConnection, CallError>.self) { tasks in
            for _ in 0..<configuration.connections {
                tasks.addTask {
                    do {
                        return .success(try await GRPCConnection.connect(connectConfiguration, group: group))
                    } catch let error as CallError {
                        return .failure(error)
                    } catch {
                        return .failure(CallError(.unavailable, "\(error)"))
                    }
                }
            }
            var connections: [GRPCConnection] = []
            var failure: CallError?
            for await outcome in tasks {
                switch outcome {
                case .success(let connection): connections.append(connection)
                case .failure(let error): failure = failure ?? error
                }
            }
            if let failure {
                for connection in connections { await connection.close() }
                return .failure(failure)
            }
            return .success(connections)
        }
        switch result {
        case .success(let connections): return connections
        case .failure(let error): throw LoadError.unreachable(error.status.message)
        }
    }
}
