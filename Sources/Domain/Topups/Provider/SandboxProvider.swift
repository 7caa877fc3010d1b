import Synchronization

/// An in-process provider with deterministic outcomes, so `tally serve` works out of the box and
/// every path can be tried without a real operator. By the number's last four digits:
/// - `0000`: declined ("number barred");
/// - `0001`: charged, but the answer times out (ambiguous; the status says charged);
/// - `0002`: refused as retryable on a top-up's first attempt, then charged;
/// - `0003`: always refused as retryable (the top-up fails after its attempts);
/// - anything else: charged after `latency`.
/// Outcomes depend on the request alone, so every instance agrees. It remembers the last
/// `memory` references it charged, for status queries (per instance: a status asked on another
/// instance is `notFound`; the worker asks right after the ambiguous charge, on the same one).
public final class SandboxProvider: TopupProvider {
    public let name = "sandbox"
    private let latency: Duration
    private let memory: Int
    private struct Book {
        var charged: [String: String] = [:]
        var order: [String] = []
        var nextReference = 0
    }

    private let book = Mutex(Book())

    public init(latency: Duration = .milliseconds(20), memory: Int = 1_000_000) {
        self.latency = latency
        self.memory = memory
    }

    public func charge(_ charge: ProviderCharge, timeout: Duration) async -> ProviderOutcome {
        let suffix = charge.phoneNumber.suffix(4)
        if suffix == "0000" { return .declined(reason: "number barred") }
        if suffix == "0003" { return .retryable(reason: "operator unavailable") }
        if suffix == "0002" && charge.attempt == 1 { return .retryable(reason: "operator busy") }
        try? await Task.sleep(for: min(latency, timeout))
        let reference = record(charge.reference)
        if suffix == "0001" { return .ambiguous(reason: "timed out after \(timeout)") }
        return .succeeded(providerReference: reference)
    }

    public func status(of reference: String, timeout: Duration) async -> ProviderStatus {
        book.withLock { $0.charged[reference] }.map { .charged(providerReference: $0) } ?? .notFound
    }

    public func shutdown() async {}

    private func record(_ reference: String) -> String {
        book.withLock { book in
            book.nextReference += 1
            let providerReference = "sbx-\(book.nextReference)"
            book.charged[reference] = providerReference
            book.order.append(reference)
            if book.order.count > memory {
                let dropped = book.order.prefix(book.order.count - memory / 2)
                for old in dropped { book.charged[old] = nil }
                book.order.removeFirst(dropped.count)
            }
            return providerReference
        }
    }
}
