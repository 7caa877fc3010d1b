/// `tools/topups/provider_sim.py` in a process of its own (see `SimulatorProcess`).
struct ProviderSimulatorProcess {
    private let simulator: SimulatorProcess

    var url: String { simulator.url }
    var port: Int { simulator.port }

    /// What `GET /stats` reports.
    struct Stats: Decodable, Equatable {
        /// Charges per reference: the simulator counts each one, it never deduplicates.
        var charges: [String: Int]
        var totalCharges: Int
        /// Minor units charged per currency.
        var amounts: [String: Int64]
        var statusQueries: Int
        /// POST /charges that got past validation, charged or not.
        var chargeRequests: Int

        enum CodingKeys: String, CodingKey {
            case charges, amounts
            case totalCharges = "total_charges"
            case statusQueries = "status_queries"
            case chargeRequests = "charge_requests"
        }
    }

    /// Starts the simulator on a free loopback port and returns once it listens.
    static func start() async throws -> ProviderSimulatorProcess {
        ProviderSimulatorProcess(simulator: try await SimulatorProcess.start(script: "tools/topups/provider_sim.py"))
    }

    /// Sets a test mode, e.g. `{"mode": "reset_after_charge", "count": 1}`.
    func control(_ json: String) async throws {
        try await simulator.control(json)
    }

    func stats() async throws -> Stats {
        try await simulator.stats(Stats.self)
    }

    /// Kills the process and waits for it; its port is free afterwards.
    func stop() async {
        await simulator.stop()
    }
}
