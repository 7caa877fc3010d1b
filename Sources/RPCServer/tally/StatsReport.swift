import Codec
import Foundation

/// `AdminService.Stats` as a person reads it (aligned tables) or as a program does (JSON with
/// the proto's lowerCamelCase field names).
enum StatsReport {
    static func table(_ stats: Tally_V1_StatsResponse) -> String {
        let instance = stats.instance ?? Tally_V1_InstanceStats()
        var lines = [
            "instance \(instance.instanceId)  up \(instance.uptimeSeconds) s  connections \(instance.openConnections)"
                + "  streams \(instance.openStreams)  calls ok \(instance.callsSucceeded) failed \(instance.callsFailed)"
                + (instance.degraded ? "  DEGRADED (Redis unreachable)" : ""),
        ]
        lines += section(
            "pools", ["pool", "total", "idle", "in use", "waiting", "max", "waits", "timeouts"],
            stats.pools.map { [$0.name, "\($0.total)", "\($0.idle)", "\($0.inUse)", "\($0.waiting)", "\($0.max)", "\($0.waits)", "\($0.timeouts)"] })
        lines += section(
            "queues", ["queue", "waiting", "active", "delayed", "completed", "failed", "dead", "jobs/s", "mean ms"],
            stats.queues.map {
                [$0.name, "\($0.waiting)", "\($0.active)", "\($0.delayed)", "\($0.completed)", "\($0.failed)", "\($0.dead)",
                 String(format: "%.1f", $0.throughputPerSecond), String(format: "%.2f", $0.meanProcessingMs)]
            })
        lines += section(
            "caches", ["cache", "entries", "hits", "misses"], stats.caches.map { [$0.name, "\($0.entries)", "\($0.hits)", "\($0.misses)"] })
        return lines.joined(separator: "\n")
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

    static func json(_ stats: Tally_V1_StatsResponse) throws -> String {
        let instance = stats.instance ?? Tally_V1_InstanceStats()
        let object: [String: Any] = [
            "instance": [
                "instanceId": instance.instanceId, "uptimeSeconds": instance.uptimeSeconds, "openConnections": instance.openConnections,
                "openStreams": instance.openStreams, "callsSucceeded": instance.callsSucceeded, "callsFailed": instance.callsFailed,
                "degraded": instance.degraded,
            ],
            "pools": stats.pools.map {
                ["name": $0.name, "total": $0.total, "idle": $0.idle, "inUse": $0.inUse, "waiting": $0.waiting, "max": $0.max,
                 "waits": $0.waits, "timeouts": $0.timeouts] as [String: Any]
            },
            "queues": stats.queues.map {
                ["name": $0.name, "waiting": $0.waiting, "active": $0.active, "delayed": $0.delayed, "completed": $0.completed,
                 "failed": $0.failed, "dead": $0.dead, "throughputPerSecond": $0.throughputPerSecond,
                 "meanProcessingMs": $0.meanProcessingMs] as [String: Any]
            },
            "caches": stats.caches.map { ["name": $0.name, "entries": $0.entries, "hits": $0.hits, "misses": $0.misses] as [String: Any] },
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
