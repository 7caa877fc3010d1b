import Codec
import Foundation

/// `Metrics`: the registry's samples (the same as `/metrics`) as flat names with labels,
/// filtered by a name prefix. Before each read, this instance's transport counters, pools,
/// queues, caches, top-ups and process figures are written into the registry.
extension AdminService {
    func metrics(prefix: String) async -> [Tally_V1_Metric] {
        let text = String(decoding: await sources.metrics.exposition(prefix: prefix), as: UTF8.self)
        return MetricsExposition.samples(text, prefix: prefix).map { sample in
            var metric = Tally_V1_Metric()
            metric.name = sample.name
            metric.value = sample.value
            metric.labels = Dictionary(sample.labels, uniquingKeysWith: { _, last in last })
            return metric
        }
    }

    /// Writes the values this service reads from their owners into the registry.
    func refreshMetrics(prefix: String) async {
        let pulled = sources.metrics.pulled
        let instance = instanceStats()
        let server = sources.server.snapshot
        pulled.gauge("tally_uptime_seconds", Double(instance.uptimeSeconds))
        pulled.gauge("tally_degraded", instance.degraded ? 1 : 0)
        pulled.gauge("tally_connections_open", Double(instance.openConnections))
        pulled.gauge("tally_streams_open", Double(instance.openStreams))
        pulled.counter("tally_calls_total", server.callsSucceeded, [("outcome", "ok")])
        pulled.counter("tally_calls_total", server.callsFailed, [("outcome", "failed")])
        // Of the failed calls: those the client cancelled, and those past their deadline.
        pulled.counter("tally_calls_cancelled_total", server.callsCancelled)
        pulled.counter("tally_calls_deadline_exceeded_total", server.callsDeadlineExceeded)
        for (name, value) in ProcessFigures.read() { pulled.gauge(name, value) }

        for (poolName, pool) in sources.pools {
            let statistics = pool.statistics
            let name = [("pool", poolName)]
            pulled.gauge("tally_db_pool_connections", Double(statistics.total), name)
            pulled.gauge("tally_db_pool_connections_idle", Double(statistics.idle), name)
            pulled.gauge("tally_db_pool_connections_in_use", Double(statistics.inUse), name)
            pulled.gauge("tally_db_pool_connections_max", Double(statistics.max), name)
            pulled.gauge("tally_db_pool_waiting", Double(statistics.waiting), name)
            pulled.counter("tally_db_pool_waits_total", statistics.waits, name)
            pulled.counter("tally_db_pool_timeouts_total", statistics.timeouts, name)
            pulled.counter("tally_db_pool_wait_seconds_total", statistics.waitTime.inSeconds, name)
        }
        if let reads = sources.reads {
            let counts = reads.readCounts
            pulled.counter("tally_db_reads_total", counts.primary, [("pool", "primary")])
            if reads.replica != nil {
                let state = reads.replicaState
                pulled.counter("tally_db_reads_total", counts.replica, [("pool", "replica")])
                pulled.counter("tally_db_read_fallbacks_total", counts.fallbacks)
                pulled.gauge("tally_db_replica_serving", reads.readsUseReplica ? 1 : 0)
                pulled.gauge("tally_db_replica_lag_seconds", state.lag.map(\.inSeconds) ?? -1)
            }
        }

        let queues = MetricsRegistry.wants(prefix, "tally_queue") ? await queueStatsIfReachable() : []
        for queue in queues {
            let name = [("queue", queue.name)]
            for (state, count) in [("waiting", queue.waiting), ("active", queue.active), ("delayed", queue.delayed), ("dead", queue.dead)] {
                pulled.gauge("tally_queue_jobs", Double(count), [("queue", queue.name), ("state", state)])
            }
            pulled.counter("tally_queue_completed_total", Int(queue.completed), name)
            pulled.counter("tally_queue_failed_attempts_total", Int(queue.failed), name)
            pulled.gauge("tally_queue_throughput_per_second", queue.throughputPerSecond, name)
            pulled.gauge("tally_queue_mean_processing_ms", queue.meanProcessingMs, name)
        }

        for cache in cacheStats() {
            let name = [("cache", cache.name)]
            pulled.gauge("tally_cache_entries", Double(cache.entries), name)
            pulled.counter("tally_cache_hits_total", Int(cache.hits), name)
            pulled.counter("tally_cache_misses_total", Int(cache.misses), name)
        }

        if let notifications = sources.notifications, MetricsRegistry.wants(prefix, "tally_notification"),
            let stats = try? await Self.notificationStats(notifications) {
            refreshNotificationMetrics(stats)
        }
        if sources.partners != nil, MetricsRegistry.wants(prefix, "tally_topup"), let stats = try? await topupStats(customer: nil, deadline: .now + .seconds(5)) {
            refreshTopupMetrics(stats)
        }
    }
}

/// This process's resident memory and open file descriptors, from /proc (Linux).
enum ProcessFigures {
    static func read() -> [(String, Double)] {
        var figures: [(String, Double)] = []
        // statm: size resident shared ... in pages.
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let resident = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            figures.append(("process_resident_memory_bytes", resident * Double(sysconf(Int32(_SC_PAGESIZE)))))
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            figures.append(("process_open_fds", Double(descriptors.count)))
        }
        return figures
    }
}
