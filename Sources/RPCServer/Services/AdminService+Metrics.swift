import Codec

/// `Metrics`: the snapshot of `Stats` as flat, Prometheus-style names with labels, so a
/// scraper or dashboard can take them without knowing the message shapes. Counters end in
/// `_total`; everything else is a gauge.
extension AdminService {
    static func metrics(
        instance: Tally_V1_InstanceStats, server: ServerStatistics.Snapshot, pools: [Tally_V1_PoolStats], queues: [Tally_V1_QueueStats], caches: [Tally_V1_CacheStats]
    ) -> [Tally_V1_Metric] {
        var metrics: [Tally_V1_Metric] = []
        func add(_ name: String, _ value: Double, _ labels: [String: String] = [:]) {
            var metric = Tally_V1_Metric()
            metric.name = name
            metric.value = value
            metric.labels = labels
            metrics.append(metric)
        }

        add("tally_uptime_seconds", Double(instance.uptimeSeconds))
        add("tally_degraded", instance.degraded ? 1 : 0)
        add("tally_connections_open", Double(instance.openConnections))
        add("tally_streams_open", Double(instance.openStreams))
        add("tally_calls_total", Double(instance.callsSucceeded), ["outcome": "ok"])
        add("tally_calls_total", Double(instance.callsFailed), ["outcome": "failed"])
        // Of the failed calls: those the client cancelled, and those past their deadline.
        add("tally_calls_cancelled_total", Double(server.callsCancelled))
        add("tally_calls_deadline_exceeded_total", Double(server.callsDeadlineExceeded))

        for pool in pools {
            let name = ["pool": pool.name]
            add("tally_db_pool_connections", Double(pool.total), name)
            add("tally_db_pool_connections_idle", Double(pool.idle), name)
            add("tally_db_pool_connections_in_use", Double(pool.inUse), name)
            add("tally_db_pool_connections_max", Double(pool.max), name)
            add("tally_db_pool_waiting", Double(pool.waiting), name)
            add("tally_db_pool_waits_total", Double(pool.waits), name)
            add("tally_db_pool_timeouts_total", Double(pool.timeouts), name)
        }

        for queue in queues {
            let name = ["queue": queue.name]
            add("tally_queue_jobs", Double(queue.waiting), ["queue": queue.name, "state": "waiting"])
            add("tally_queue_jobs", Double(queue.active), ["queue": queue.name, "state": "active"])
            add("tally_queue_jobs", Double(queue.delayed), ["queue": queue.name, "state": "delayed"])
            add("tally_queue_jobs", Double(queue.dead), ["queue": queue.name, "state": "dead"])
            add("tally_queue_completed_total", Double(queue.completed), name)
            add("tally_queue_failed_attempts_total", Double(queue.failed), name)
            add("tally_queue_throughput_per_second", queue.throughputPerSecond, name)
            add("tally_queue_mean_processing_ms", queue.meanProcessingMs, name)
        }

        for cache in caches {
            let name = ["cache": cache.name]
            add("tally_cache_entries", Double(cache.entries), name)
            add("tally_cache_hits_total", Double(cache.hits), name)
            add("tally_cache_misses_total", Double(cache.misses), name)
        }
        return metrics
    }
}
