import Prometheus
import Synchronization

/// Writes values read from their owners at scrape time into the registry: gauges are set,
/// counters (cumulative values their owner keeps, such as a pool's waits) advance by what
/// they grew since the last scrape, so they keep Prometheus' counter type.
final class PulledMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let lastCounts = Mutex<[Series: Double]>([:])

    private struct Series: Hashable {
        var name: String
        var labels: [String]
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// The name as given (no unit suffix added), without help text.
    private static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: "")
    }

    func gauge(_ name: String, _ value: Double, _ labels: [(String, String)] = []) {
        registry.makeGauge(descriptor: Self.descriptor(name), labels: labels).set(value)
    }

    func counter(_ name: String, _ value: Int, _ labels: [(String, String)] = []) {
        counter(name, Double(value), labels)
    }

    func counter(_ name: String, _ value: Double, _ labels: [(String, String)] = []) {
        let series = Series(name: name, labels: labels.flatMap { [$0.0, $0.1] })
        let counter = registry.makeCounter(descriptor: Self.descriptor(name), labels: labels)
        lastCounts.withLock { last in
            let previous = last[series] ?? 0
            // An owner that started over (a queue's counters after FLUSHALL) restarts the series.
            if value < previous { counter.reset() }
            counter.increment(by: value - (value < previous ? 0 : previous))
            last[series] = value
        }
    }
}
