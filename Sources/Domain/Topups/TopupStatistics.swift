import Storage

/// What operators of partner top-ups watch: counts by state, revenue, today's totals, provider
/// latency. Read from Postgres, the truth shared by every instance, so any instance answers
/// for the whole fleet.
public struct TopupStatistics: Sendable, Hashable {
    public struct Amount: Sendable, Hashable {
        public var currency: String
        public var minorUnits: Int64
        public var count: Int64
    }

    public struct Customer: Sendable, Hashable {
        /// Empty for the total.
        public var customerID: String
        public var byState: [Topup.State: Int64] = [:]
        /// Succeeded top-ups' amounts per currency.
        public var revenue: [Amount] = []
        /// Created today (UTC).
        public var todayCount: Int64 = 0
        public var todayAmounts: [Amount] = []
    }

    public var total: Customer
    public var customers: [Customer]
    public var providerCallsLastHour: Int64
    /// Charge latency percentiles over the last hour, milliseconds.
    public var latencyP50: Double
    public var latencyP90: Double
    public var latencyP99: Double
}

extension Topups {
    /// The statistics of one customer, or of everyone (`customer` nil) with a per-customer list.
    public func statistics(customer: String?) async throws -> TopupStatistics {
        try await database.read { connection in
            var customers: [String: TopupStatistics.Customer] = [:]
            var total = TopupStatistics.Customer(customerID: "")

            for row in try await connection.query(
                "SELECT customer_id, state, count(*) FROM topups WHERE $1::text IS NULL OR customer_id = $1 GROUP BY 1, 2", [customer]) {
                let id: String = try row.decode(0), count: Int64 = try row.decode(2)
                guard let state = Topup.State(rawValue: try row.decode(1)) else { continue }
                customers[id, default: TopupStatistics.Customer(customerID: id)].byState[state, default: 0] += count
                total.byState[state, default: 0] += count
            }
            for row in try await connection.query(
                """
                SELECT customer_id, currency, sum(amount_minor_units)::int8, count(*) FROM topups
                WHERE state = 'SUCCEEDED' AND ($1::text IS NULL OR customer_id = $1) GROUP BY 1, 2 ORDER BY 1, 2
                """, [customer]) {
                let id: String = try row.decode(0)
                let amount = TopupStatistics.Amount(currency: try row.decode(1), minorUnits: try row.decode(2), count: try row.decode(3))
                customers[id, default: TopupStatistics.Customer(customerID: id)].revenue.append(amount)
                total.revenue.add(amount)
            }
            for row in try await connection.query(
                """
                SELECT customer_id, currency, sum(amount_minor_units)::int8, count(*) FROM topups
                WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                  AND ($1::text IS NULL OR customer_id = $1) GROUP BY 1, 2 ORDER BY 1, 2
                """, [customer]) {
                let id: String = try row.decode(0)
                let amount = TopupStatistics.Amount(currency: try row.decode(1), minorUnits: try row.decode(2), count: try row.decode(3))
                customers[id, default: TopupStatistics.Customer(customerID: id)].todayAmounts.append(amount)
                customers[id, default: TopupStatistics.Customer(customerID: id)].todayCount += amount.count
                total.todayAmounts.add(amount)
                total.todayCount += amount.count
            }
            let latency = try await connection.query(
                """
                SELECT count(*), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), 0),
                       coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY latency_ms), 0),
                       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms), 0)
                FROM topup_attempts WHERE call = 'charge' AND started_at > now() - interval '1 hour'
                  AND ($1::text IS NULL OR topup_id IN (SELECT id FROM topups WHERE customer_id = $1))
                """, [customer])[0]
            if let customer, customers[customer] == nil { customers[customer] = TopupStatistics.Customer(customerID: customer) }
            return TopupStatistics(
                total: customer.flatMap { customers[$0] } ?? total,
                customers: customers.values.sorted { $0.customerID < $1.customerID },
                providerCallsLastHour: try latency.decode(0), latencyP50: try latency.decode(1), latencyP90: try latency.decode(2),
                latencyP99: try latency.decode(3))
        }
    }
}

extension [TopupStatistics.Amount] {
    mutating func add(_ amount: TopupStatistics.Amount) {
        if let index = firstIndex(where: { $0.currency == amount.currency }) {
            self[index].minorUnits += amount.minorUnits
            self[index].count += amount.count
        } else {
            append(amount)
        }
    }
}
