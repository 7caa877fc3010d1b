import Codec

/// The call metrics of `AdminService.Metrics` (gRPC's `grpc_server_call_*`) per method: calls
/// finished, those not OK, and latency quantiles read off the duration histogram (the upper
/// bound of the bucket holding the quantile, as Prometheus' `histogram_quantile` would bound
/// it), so `tally stats` shows what a dashboard shows.
struct CallsReport {
    struct Method: Equatable {
        var method: String
        var calls = 0
        var errors = 0
        var p50Ms: Double?
        var p99Ms: Double?
    }

    var methods: [Method]

    init(_ metrics: [Tally_V1_Metric]) {
        // Buckets are cumulative per (method, status); summed over statuses per method.
        var buckets: [String: [Double: Double]] = [:]
        var counts: [String: (calls: Int, errors: Int)] = [:]
        for metric in metrics {
            guard let method = metric.labels["grpc_method"] else { continue }
            switch metric.name {
            case "grpc_server_call_duration_seconds_count":
                let ok = metric.labels["grpc_status"] == "OK"
                counts[method, default: (0, 0)].calls += Int(metric.value)
                if !ok { counts[method, default: (0, 0)].errors += Int(metric.value) }
            case "grpc_server_call_duration_seconds_bucket":
                guard let bound = metric.labels["le"].flatMap({ $0 == "+Inf" ? Double.infinity : Double($0) }) else { continue }
                buckets[method, default: [:]][bound, default: 0] += metric.value
            default:
                continue
            }
        }
        methods = counts.keys.sorted().compactMap { method in
            guard let count = counts[method], count.calls > 0 else { return nil }
            let cumulative = (buckets[method] ?? [:]).sorted { $0.key < $1.key }
            func quantile(_ q: Double) -> Double? {
                let rank = q * Double(count.calls)
                return cumulative.first { $0.value >= rank }.map { $0.key * 1000 }
            }
            return Method(method: method, calls: count.calls, errors: count.errors, p50Ms: quantile(0.5), p99Ms: quantile(0.99))
        }
    }

    static func milliseconds(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value.isInfinite ? "> 100000" : String(format: value < 1 ? "%.3f" : "%.1f", value)
    }
}
