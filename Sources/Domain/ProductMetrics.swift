import CoreMetrics

/// The product's counters, through swift-metrics' global factory: the executable bootstraps it
/// with its Prometheus registry before it builds the product (so these handles, made on first
/// use, land there); in tests they go nowhere.
public enum ProductMetrics {
    /// Events answered as accepted (new) and as duplicates (resent within the dedupe window).
    static let eventsAccepted = Counter(label: "tally_events_acknowledged_total", dimensions: [("outcome", "accepted")])
    static let eventsDuplicate = Counter(label: "tally_events_acknowledged_total", dimensions: [("outcome", "duplicate")])
    /// Events written to Postgres for the first time (by a worker, or inline with Redis down).
    static let eventsPersisted = Counter(label: "tally_events_persisted_total")

    /// Which limit decided.
    public enum Limit: String, Sendable, CaseIterable {
        case eventsPeer = "events_peer"
        case eventsUser = "events_user"
        case topupCustomer = "topup_customer"
    }

    private static let decisions: [Limit: (allowed: Counter, refused: Counter)] = Dictionary(
        uniqueKeysWithValues: Limit.allCases.map { limit in
            (limit, (Counter(label: "tally_rate_limit_decisions_total", dimensions: [("limit", limit.rawValue), ("decision", "allowed")]),
                     Counter(label: "tally_rate_limit_decisions_total", dimensions: [("limit", limit.rawValue), ("decision", "refused")])))
        })

    /// One decision of a rate limit (a call, or a batch's users).
    public static func rateLimitDecided(_ limit: Limit, allowed: Bool) {
        guard let counters = decisions[limit] else { return }
        (allowed ? counters.allowed : counters.refused).increment()
    }
}
