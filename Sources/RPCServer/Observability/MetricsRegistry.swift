import CoreMetrics
public import Prometheus
import Synchronization

/// The process's metrics: one Prometheus registry that everything writes into through
/// swift-metrics (the server's calls, the domains, libraries), plus values read from their
/// owners at scrape time (pools, queues, caches, process) by refreshers. `/metrics` and
/// `AdminService.Metrics` both read `exposition()`: one source, no second list.
///
/// Names are written the way their emitters know them (gRPC's OpenTelemetry names such as
/// `grpc.server.call.duration` with the label `grpc.method`) and leave as Prometheus names
/// (`grpc_server_call_duration_seconds`, `grpc_method`), as OpenTelemetry's Prometheus
/// exporter spells them, so existing dashboards work.
public final class MetricsRegistry: Sendable {
    public let prometheus: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory
    private let refreshers = Mutex<[Refresher]>([])
    /// Writes values read at scrape time (see `addRefresher`).
    let pulled: PulledMetrics

    public init() {
        let prometheus = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: prometheus)
        factory.nameAndLabelSanitizer = { name, labels in
            (Self.prometheusName(name), labels.map { (Self.prometheusLabel($0.0), $0.1) })
        }
        // OpenTelemetry's recommended buckets for gRPC call durations (seconds) and message
        // sizes (bytes), from the gRPC metrics specification (A66).
        // (Keyed by the names after sanitizing, as the factory looks them up.)
        factory.durationHistogramBuckets[Self.prometheusName(CallMetrics.durationName)] = Self.callDurationBuckets
        factory.valueHistogramBuckets[Self.prometheusName(CallMetrics.sentSizeName)] = Self.messageSizeBuckets
        factory.valueHistogramBuckets[Self.prometheusName(CallMetrics.receivedSizeName)] = Self.messageSizeBuckets
        self.prometheus = prometheus
        self.factory = factory
        self.pulled = PulledMetrics(registry: prometheus)
    }

    /// Runs before every exposition, to set the gauges and counters of values read from their
    /// owners (a pool's idle connections, a queue's length). It is given the name prefix the
    /// reader wants ("" for all), so costly reads (top-up statistics run a query) can be skipped.
    public typealias Refresher = @Sendable (_ prefix: String) async -> Void

    public func addRefresher(_ refresh: @escaping Refresher) {
        refreshers.withLock { $0.append(refresh) }
    }

    /// The Prometheus text exposition of everything, refreshed now (those named with `prefix`).
    public func exposition(prefix: String = "") async -> [UInt8] {
        for refresh in refreshers.withLock({ $0 }) { await refresh(prefix) }
        return prometheus.emitToBuffer()
    }

    /// Whether a reader asking for `prefix` wants metrics named `name...`.
    public static func wants(_ prefix: String, _ name: String) -> Bool {
        prefix.isEmpty || prefix.hasPrefix(name) || name.hasPrefix(prefix)
    }

    static let callDurationBuckets: [Duration] = [
        0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.013,
        0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1, 2, 5,
        10, 20, 50, 100,
    ].map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }

    static let messageSizeBuckets: [Double] = [
        0, 1024, 2048, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864, 268_435_456,
        1_073_741_824, 4_294_967_296,
    ]

    /// `grpc.server.call.duration` -> `grpc_server_call_duration_seconds`, as OpenTelemetry's
    /// Prometheus exporter names it (unit suffix, `_total` on counters); other names get their
    /// dots and dashes replaced.
    static func prometheusName(_ name: String) -> String {
        if let known = otelNames[name] { return known }
        return String(name.map { $0 == "." || $0 == "-" ? "_" : $0 })
    }

    static func prometheusLabel(_ label: String) -> String {
        String(label.map { $0 == "." || $0 == "-" ? "_" : $0 })
    }

    private static let otelNames: [String: String] = [
        CallMetrics.startedName: "grpc_server_call_started_total",
        CallMetrics.durationName: "grpc_server_call_duration_seconds",
        CallMetrics.sentSizeName: "grpc_server_call_sent_total_compressed_message_size_bytes",
        CallMetrics.receivedSizeName: "grpc_server_call_rcvd_total_compressed_message_size_bytes",
    ]
}
