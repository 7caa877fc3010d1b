import Units

import Codec
import GRPCClient
import NIOCore
import NIOPosix

/// Runs a presence load: opens the streams over the ramp-up (each connection on the next event
/// loop, each stream's task on its connection's loop), waits until all are open, sends status
/// changes at the configured rate for the duration while the streams record what they
/// receive, waits two intervals, checks that no last change was lost, then ends the streams.
public struct PresenceRunner: Sendable {
    public let configuration: PresenceLoadConfiguration

    public init(configuration: PresenceLoadConfiguration) {
        self.configuration = configuration
    }

    /// What the progress line shows, about once a second.
    public struct Progress: Sendable {
        public var elapsed: Double
        public var phase: String
        public var ready: Int
        public var ended: Int
        public var changesSent: Int
        public var measured: UInt64
    }

    /// Runs the whole load; `progress` about once a second, `opened` once when every stream is
    /// open (or the opening gave up). Throws `LoadError.unreachable` when no stream opened.
    public func run(
        progress: (@Sendable (Progress) -> Void)? = nil, opened: (@Sendable (Int, Double) -> Void)? = nil
    ) async throws(LoadError) -> PresenceResult {
        let configuration = self.configuration
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        defer { group.shutdownGracefully { _ in } }
        let loops = Array(group.makeIterator())
        let loopStatistics = loops.map { _ in PresenceLoopStatistics() }
        let streams = (0..<configuration.streams).map { offset in
            let user = configuration.firstUser + offset
            var random = FastRandom.stream(user, of: configuration.seed)
            return PresenceStream(
                user: user,
                watching: PresenceSubscriptions.pick(
                    for: user, count: configuration.subscriptions, users: configuration.users, random: &random))
        }
        let perConnection = configuration.streamsPerConnection
        let connections = configuration.connections
        let control = PresenceControl()
        let start = Monotonic.now()
        var phase = PresencePhases(start: start)

        let check: PresenceCheck = await withTaskGroup(of: Void.self) { tasks in
            for connection in 0..<connections {
                let slice = Array(streams[(connection * perConnection)..<min((connection + 1) * perConnection, streams.count)])
                let loop = loops[connection % loops.count]
                let target = configuration.targets[(configuration.firstUser + connection * perConnection) % configuration.targets.count]
                let opensAt = start + Monotonic.nanoseconds(configuration.rampUp) / UInt64(connections) * UInt64(connection)
                let statistics = loopStatistics[connection % loops.count]
                tasks.addTask {
                    await Self.runConnection(
                        slice, target: target, loop: loop, opensAt: opensAt, configuration: configuration,
                        statistics: statistics, control: control)
                }
            }
            for (index, loop) in loops.enumerated() {
                let own = streams.indices.filter { ($0 / perConnection) % loops.count == index }.map { streams[$0] }
                let driver = PresenceDriver(
                    index: index, loop: loop, streams: own, statistics: loopStatistics[index], control: control,
                    changesPerNanosecond: configuration.changesPerSecond / 1e9 * Double(own.count) / Double(max(1, streams.count)),
                    heartbeat: configuration.heartbeat, seed: configuration.seed)
                tasks.addTask(executorPreference: EventLoopTaskExecutor(eventLoop: loop)) { await driver.run() }
            }
            let progressTask = progress.map { progress in
                Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        if Task.isCancelled { return }
                        let totals = Self.merged(loopStatistics)
                        progress(Progress(
                            elapsed: Double(Monotonic.now() - start) / 1e9, phase: control.changeWindow == nil ? "opening" : "running",
                            ready: control.ready.load(ordering: .relaxed), ended: control.ended.load(ordering: .relaxed),
                            changesSent: totals.changesSent, measured: totals.measured))
                    }
                }
            }

            // Open: until every stream is ready or ended, or the ramp-up plus a margin passed.
            let openDeadline = start + Monotonic.nanoseconds(configuration.rampUp + configuration.connectTimeout * 2 + .seconds(30))
            while control.settled.load(ordering: .relaxed) < streams.count, Monotonic.now() < openDeadline
            {
                try? await Task.sleep(for: .milliseconds(50))
            }
            phase.opened = Monotonic.now()
            phase.openStreams = streams.reduce(0) { open, stream in open + (stream.state.withLock { $0.ready && !$0.ended } ? 1 : 0) }
            opened?(phase.openStreams, Double(phase.opened - start) / 1e9)

            // Changes for the duration, then two intervals for the last ones to arrive.
            let changesStart = Monotonic.now()
            phase.changesStarted = changesStart
            phase.before = Self.merged(loopStatistics)
            control.startChanges(at: changesStart, until: changesStart + Monotonic.nanoseconds(configuration.duration))
            try? await Task.sleep(for: configuration.duration)
            phase.after = Self.merged(loopStatistics)
            phase.changesEnded = Monotonic.now()
            try? await Task.sleep(for: configuration.settle)
            let check = Self.check(streams, firstUser: configuration.firstUser)

            // End: half-close every stream (the server ends each with OK); cancel what is left after 10 s.
            control.stop()
            for stream in streams { await stream.finish() }
            let endDeadline = Monotonic.now() + 10_000_000_000
            while control.ended.load(ordering: .relaxed) < streams.count, Monotonic.now() < endDeadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            for stream in streams { stream.cancel() }
            await tasks.waitForAll()
            progressTask?.cancel()
            return check
        }

        let totals = Self.merged(loopStatistics)
        if phase.openStreams == 0 {
            let sample = totals.outcomes.first { $0.key != "OK" }?.value.sampleMessage ?? "no stream opened"
            throw LoadError.unreachable(sample)
        }
        return PresenceResult(
            configuration: configuration, openStreams: phase.openStreams, openSeconds: Double(phase.opened - start) / 1e9,
            // Every change sent: a loop running late (a loaded machine) may send the last changes
            // of the phase after `phase.after` was read.
            statistics: totals, changesSent: totals.changesSent - phase.before.changesSent,
            messagesDuringChanges: phase.after.messagesReceived - phase.before.messagesReceived,
            changesReceivedDuringChanges: phase.after.changesReceived - phase.before.changesReceived,
            changeSeconds: Double(phase.changesEnded - phase.changesStarted) / 1e9, check: check)
    }

    /// One connection's life: connects at `opensAt`, runs its streams, closes when they ended.
    private static func runConnection(
        _ streams: [PresenceStream], target: PresenceLoadConfiguration.Target, loop: any EventLoop, opensAt: UInt64,
        configuration: PresenceLoadConfiguration, statistics: PresenceLoopStatistics, control: PresenceControl
    ) async {
        let now = Monotonic.now()
        if opensAt > now { try? await Task.sleep(for: .nanoseconds(Int64(opensAt - now))) }
        guard !control.isStopped else {
            statistics.recordOutcome(StatusCode.cancelled.name, message: "the run ended before this connection's turn", streams: streams.count)
            control.ended.wrappingAdd(streams.count, ordering: .relaxed)
            control.settled.wrappingAdd(streams.count, ordering: .relaxed)
            return
        }
        var client = GRPCClientConfiguration(
            host: target.host, port: target.port, tls: configuration.tls, connectTimeout: configuration.connectTimeout)
        client.userAgent = "tally-load/1.0"
        let connection: GRPCConnection
        do {
            connection = try await GRPCConnection.connect(client, group: loop)
        } catch {
            let message = (error as? CallError)?.status.message ?? "\(error)"
            statistics.recordOutcome(StatusCode.unavailable.name, message: message, streams: streams.count)
            for stream in streams { stream.state.withLock { $0.ended = true } }
            control.ended.wrappingAdd(streams.count, ordering: .relaxed)
            control.settled.wrappingAdd(streams.count, ordering: .relaxed)
            return
        }
        await withTaskGroup(of: Void.self) { tasks in
            for stream in streams {
                tasks.addTask(executorPreference: connection.taskExecutor) {
                    let (status, message) = await stream.run(on: connection, metadata: configuration.metadata, statistics: statistics) {
                        control.ready.wrappingAdd(1, ordering: .relaxed)
                        control.settled.wrappingAdd(1, ordering: .relaxed)
                    }
                    statistics.recordOutcome(status, message: message)
                    control.ended.wrappingAdd(1, ordering: .relaxed)
                    // A stream that ended before it was ready is settled now.
                    if !stream.state.withLock({ $0.ready }) { control.settled.wrappingAdd(1, ordering: .relaxed) }
                }
            }
        }
        await connection.close()
    }

    /// The lost-change check over this process' streams: a watched user of this process whose
    /// stream is open is expected at its last sent state.
    static func check(_ streams: [PresenceStream], firstUser: Int) -> PresenceCheck {
        let sent: [PresenceMark?] = streams.map { stream in
            stream.state.withLock { $0.ready && !$0.ended ? $0.lastSent : nil }
        }
        var check = PresenceCheck()
        for stream in streams {
            let (alive, received) = stream.state.withLock { ($0.ready && !$0.ended, $0.received) }
            guard alive else {
                check.skip(stream.watching.count)
                continue
            }
            check.check(subscriber: stream.user, watching: stream.watching, received: received) { user in
                let offset = user - firstUser
                return sent.indices.contains(offset) ? sent[offset] : nil
            }
        }
        return check
    }

    private static func merged(_ statistics: [PresenceLoopStatistics]) -> PresenceStatistics {
        var total = PresenceStatistics()
        for loop in statistics { total.merge(loop.snapshot) }
        return total
    }
}

/// When the run's phases began and the counters at the edges of the changes.
private struct PresencePhases {
    let start: UInt64
    var opened: UInt64 = 0
    var openStreams = 0
    var changesStarted: UInt64 = 0
    var changesEnded: UInt64 = 0
    var before = PresenceStatistics()
    var after = PresenceStatistics()

    init(start: UInt64) {
        self.start = start
        self.opened = start
        self.changesStarted = start
        self.changesEnded = start
    }
}
