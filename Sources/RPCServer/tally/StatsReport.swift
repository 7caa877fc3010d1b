import Codec
import Foundation

/// `AdminService.Stats` as a person reads it (aligned tables) or as a program does (JSON with
/// the proto's lowerCamelCase field names).
enum StatsReport {
    static func table(_ stats: Tally_V1_StatsResponse, topups: Tally_V1_TopupStatsResponse? = nil,
                      notifications: Tally_V1_NotificationStatsResponse? = nil, calls: CallsReport? = nil) -> String {
        let instance = stats.instance ?? Tally_V1_InstanceStats()
        var lines = [
            "instance \(instance.instanceId)  up \(instance.uptimeSeconds) s  connections \(instance.openConnections)"
                + "  streams \(instance.openStreams)  calls ok \(instance.callsSucceeded) failed \(instance.callsFailed)"
                + (instance.degraded ? "  DEGRADED (Redis unreachable)" : ""),
        ]
        lines += section(
            "pools", ["pool", "total", "idle", "in use", "waiting", "max", "waits", "timeouts", "reads", "reads now"],
            stats.pools.map {
                [$0.name, "\($0.total)", "\($0.idle)", "\($0.inUse)", "\($0.waiting)", "\($0.max)", "\($0.waits)", "\($0.timeouts)", "\($0.reads)",
                 readsNow($0)]
            })
        lines += section(
            "queues", ["queue", "waiting", "active", "delayed", "completed", "failed", "dead", "jobs/s", "mean ms"],
            stats.queues.map {
                [$0.name, "\($0.waiting)", "\($0.active)", "\($0.delayed)", "\($0.completed)", "\($0.failed)", "\($0.dead)",
                 String(format: "%.1f", $0.throughputPerSecond), String(format: "%.2f", $0.meanProcessingMs)]
            })
        lines += section(
            "caches", ["cache", "entries", "hits", "misses"], stats.caches.map { [$0.name, "\($0.entries)", "\($0.hits)", "\($0.misses)"] })
        if let calls {
            lines += section(
                "calls (since start; latency bounds from the histogram buckets)", ["method", "calls", "not OK", "p50 ms <=", "p99 ms <="],
                calls.methods.map { [$0.method, "\($0.calls)", "\($0.errors)", CallsReport.milliseconds($0.p50Ms), CallsReport.milliseconds($0.p99Ms)] })
        }
        if let topups { lines += table(topups) }
        if let notifications { lines += table(notifications) }
        return lines.joined(separator: "\n")
    }

    /// The replica's read state with its lag; the primary's reads taken over from the replica.
    static func readsNow(_ pool: Tally_V1_PoolStats) -> String {
        if !pool.readState.isEmpty {
            return pool.lagMs >= 0 ? "\(pool.readState), lag \(pool.lagMs) ms" : pool.readState
        }
        return pool.readFallbacks > 0 ? "\(pool.readFallbacks) in place of the replica" : ""
    }

    /// Top-ups per customer and in total, then the provider's latency and the limit's mode.
    static func table(_ topups: Tally_V1_TopupStatsResponse) -> [String] {
        func count(_ customer: Tally_V1_CustomerTopupStats, _ state: String) -> String {
            "\(customer.states.first { $0.state == state }?.count ?? 0)"
        }
        func amounts(_ list: [Tally_V1_CurrencyAmount]) -> String {
            list.isEmpty ? "-" : list.map { "\($0.minorUnits) \($0.currency)" }.joined(separator: ", ")
        }
        let rows = (topups.customers + [topups.total ?? Tally_V1_CustomerTopupStats()]).map { customer in
            [customer.customerId.isEmpty ? "(all)" : customer.customerId, count(customer, "PENDING"), count(customer, "PROCESSING"),
             count(customer, "SUCCEEDED"), count(customer, "FAILED"), "\(customer.todayCount)", amounts(customer.todayAmounts),
             amounts(customer.revenue)]
        }
        return section("top-ups", ["customer", "pending", "processing", "succeeded", "failed", "today", "today's amount", "revenue"], rows)
            + [String(format: "provider: %d calls in the last hour, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms; limit decided by %@",
                      topups.providerCallsLastHour, topups.providerLatencyP50Ms, topups.providerLatencyP90Ms,
                      topups.providerLatencyP99Ms, topups.limitMode)]
    }

    /// The notification queue and outbox in one row, then the limits and the sink.
    static func table(_ stats: Tally_V1_NotificationStatsResponse) -> [String] {
        section("notifications", ["waiting", "delayed", "in flight", "pending", "delivered", "dead", "retried", "paused dest.", "sent/s"],
                [["\(stats.waiting)", "\(stats.delayed)", "\(stats.inFlight)", "\(stats.pending)", "\(stats.delivered)", "\(stats.dead)",
                  "\(stats.failedAttempts)", "\(stats.pausedDestinations)", String(format: "%.1f", stats.deliveredPerSecond)]])
            + [String(format: "notification limits: %g/s per destination, %g/s in all; sink %@",
                      stats.ratePerDestination, stats.rateGlobal, stats.sink)]
    }

    /// A titled table, columns padded to their widest cell (names left, numbers right).
    private static func section(_ title: String, _ header: [String], _ rows: [[String]]) -> [String] {
        guard !rows.isEmpty else { return ["", "\(title): none"] }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.indices.map { column in
                let padding = String(repeating: " ", count: widths[column] - cells[column].count)
                return column == 0 ? cells[column] + padding : padding + cells[column]
            }.joined(separator: "  ")
        }
        return ["", line(header)] + rows.map(line)
    }

    static func json(_ stats: Tally_V1_StatsResponse, topups: Tally_V1_TopupStatsResponse? = nil,
                     notifications: Tally_V1_NotificationStatsResponse? = nil, calls: CallsReport? = nil) throws -> String {
        let instance = stats.instance ?? Tally_V1_InstanceStats()
        var object: [String: Any] = [
            "instance": [
                "instanceId": instance.instanceId, "uptimeSeconds": instance.uptimeSeconds, "openConnections": instance.openConnections,
                "openStreams": instance.openStreams, "callsSucceeded": instance.callsSucceeded, "callsFailed": instance.callsFailed,
                "degraded": instance.degraded,
            ],
            "pools": stats.pools.map {
                ["name": $0.name, "total": $0.total, "idle": $0.idle, "inUse": $0.inUse, "waiting": $0.waiting, "max": $0.max,
                 "waits": $0.waits, "timeouts": $0.timeouts, "reads": $0.reads, "readState": $0.readState, "lagMs": $0.lagMs,
                 "readFallbacks": $0.readFallbacks] as [String: Any]
            },
            "queues": stats.queues.map {
                ["name": $0.name, "waiting": $0.waiting, "active": $0.active, "delayed": $0.delayed, "completed": $0.completed,
                 "failed": $0.failed, "dead": $0.dead, "throughputPerSecond": $0.throughputPerSecond,
                 "meanProcessingMs": $0.meanProcessingMs] as [String: Any]
            },
            "caches": stats.caches.map { ["name": $0.name, "entries": $0.entries, "hits": $0.hits, "misses": $0.misses] as [String: Any] },
        ]
        if let calls {
            object["calls"] = calls.methods.map { method -> [String: Any] in
                var fields: [String: Any] = ["method": method.method, "calls": method.calls, "errors": method.errors]
                if let p50 = method.p50Ms, p50.isFinite { fields["p50Ms"] = p50 }
                if let p99 = method.p99Ms, p99.isFinite { fields["p99Ms"] = p99 }
                return fields
            }
        }
        if let topups {
            func customer(_ stats: Tally_V1_CustomerTopupStats) -> [String: Any] {
                func amounts(_ list: [Tally_V1_CurrencyAmount]) -> [[String: Any]] {
                    list.map { ["currency": $0.currency, "minorUnits": $0.minorUnits, "count": $0.count] }
                }
                return ["customerId": stats.customerId, "states": Dictionary(uniqueKeysWithValues: stats.states.map { ($0.state, $0.count) }),
                        "revenue": amounts(stats.revenue), "todayCount": stats.todayCount, "todayAmounts": amounts(stats.todayAmounts)]
            }
            object["topups"] = [
                "total": customer(topups.total ?? Tally_V1_CustomerTopupStats()), "customers": topups.customers.map(customer),
                "providerCallsLastHour": topups.providerCallsLastHour, "providerLatencyP50Ms": topups.providerLatencyP50Ms,
                "providerLatencyP90Ms": topups.providerLatencyP90Ms, "providerLatencyP99Ms": topups.providerLatencyP99Ms,
                "limitMode": topups.limitMode,
            ] as [String: Any]
        }
        if let notifications {
            object["notifications"] = [
                "waiting": notifications.waiting, "delayed": notifications.delayed, "inFlight": notifications.inFlight,
                "pending": notifications.pending, "delivered": notifications.delivered, "dead": notifications.dead,
                "failedAttempts": notifications.failedAttempts, "deadLettered": notifications.deadLettered,
                "pausedDestinations": notifications.pausedDestinations, "deliveredPerSecond": notifications.deliveredPerSecond,
                "ratePerDestination": notifications.ratePerDestination, "rateGlobal": notifications.rateGlobal, "sink": notifications.sink,
            ] as [String: Any]
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
