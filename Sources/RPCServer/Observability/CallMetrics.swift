import Codec
import CoreMetrics
import Synchronization

/// gRPC's server call metrics (the OpenTelemetry names of the gRPC metrics specification, A66),
/// per method: calls started; per method and status, call duration and the compressed bytes
/// of the messages received and sent per call.
///
/// The handles of a method are made once (at registration, and per status on first use), so
/// a call pays for an atomic increment and three histogram records, no lookup by name. Only
/// registered methods get their own label; every other path is `other`, so a client cannot grow
/// the label set.
public final class CallMetrics: Sendable {
    static let startedName = "grpc.server.call.started"
    static let durationName = "grpc.server.call.duration"
    static let sentSizeName = "grpc.server.call.sent_total_compressed_message_size"
    static let receivedSizeName = "grpc.server.call.rcvd_total_compressed_message_size"
    static let otherMethod = "other"
    /// gRPC's codes, 0 (OK) to 16 (UNAUTHENTICATED); a server never ends a call with another.
    static let statusCodes = 17

    let method: String
    private let factory: any MetricsFactory
    private let started: Counter
    private let byStatus = Mutex<[StatusHandles?]>(Array(repeating: nil, count: CallMetrics.statusCodes))

    private struct StatusHandles {
        var duration: Timer
        var sent: Recorder
        var received: Recorder
    }

    /// `method` is the path without its leading slash (`tally.v1.EventService/Track`), as the
    /// specification's `grpc.method` label has it.
    init(method: String, factory: any MetricsFactory) {
        self.method = method
        self.factory = factory
        started = Counter(label: Self.startedName, dimensions: [("grpc.method", method)], factory: factory)
    }

    func callStarted() {
        started.increment()
    }

    func callFinished(status: StatusCode, duration: Duration, sentBytes: Int, receivedBytes: Int) {
        let handles = handles(for: status)
        handles.duration.recordNanoseconds(duration.nanoseconds)
        handles.sent.record(sentBytes)
        handles.received.record(receivedBytes)
    }

    private func handles(for status: StatusCode) -> StatusHandles {
        let status = (0..<Self.statusCodes).contains(status.rawValue) ? status : .unknown
        let index = status.rawValue
        if let handles = byStatus.withLock({ $0[index] }) { return handles }
        let dimensions = [("grpc.method", method), ("grpc.status", status.name)]
        let made = StatusHandles(
            duration: Timer(label: Self.durationName, dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory),
            sent: Recorder(label: Self.sentSizeName, dimensions: dimensions, aggregate: true, factory: factory),
            received: Recorder(label: Self.receivedSizeName, dimensions: dimensions, aggregate: true, factory: factory))
        return byStatus.withLock { slots in
            if let existing = slots[index] { return existing }
            slots[index] = made
            return made
        }
    }
}
