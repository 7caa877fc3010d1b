/// `tools/quiz/webhook_sim.py` in a process of its own (see `SimulatorProcess`).
struct WebhookSimulatorProcess {
    let simulator: SimulatorProcess
    let secret: String

    /// Where the sink posts.
    var url: String { "\(simulator.url)/notify" }

    struct Arrival: Decodable {
        var id: String
        var destination: String
        /// Seconds since the epoch, at arrival.
        var time: Double
        /// Seconds since the epoch, when Tally sent it (the payload's `sent_at`).
        var sentAt: Double?
        var signatureValid: Bool
        var attempt: Int
        var status: Int

        enum CodingKeys: String, CodingKey {
            case id, destination, time, attempt, status
            case signatureValid = "signature_valid"
            case sentAt = "sent_at"
        }
    }

    /// What `GET /stats` reports.
    struct Stats: Decodable {
        var arrivals: [Arrival]
        var counts: [String: Int]
        /// Arrivals answered 2xx, per id.
        var delivered: [String: Int]
        var total: Int
        var invalidSignatures: Int

        enum CodingKeys: String, CodingKey {
            case arrivals, counts, delivered, total
            case invalidSignatures = "invalid_signatures"
        }
    }

    static func start(secret: String) async throws -> WebhookSimulatorProcess {
        WebhookSimulatorProcess(
            simulator: try await SimulatorProcess.start(script: "tools/quiz/webhook_sim.py", arguments: ["--secret", secret]), secret: secret)
    }

    func control(_ json: String) async throws {
        try await simulator.control(json)
    }

    func stats() async throws -> Stats {
        try await simulator.stats(Stats.self)
    }

    func stop() async {
        await simulator.stop()
    }
}
