import Codec
import Synchronization

/// What the test TopupService saw: each idempotency key with its first request and how often
/// it came, the API keys calls carried, and replays whose request differed from the first.
final class TopupLedger: Sendable {
    struct Entries {
        var firstRequest: [String: Tally_V1_TopupRequest] = [:]
        var timesSeen: [String: Int] = [:]
        var apiKeys: [String: Int] = [:]
        var callsWithoutAPIKey = 0
        var replays = 0
        var replaysDiffering = 0
    }

    private let entries = Mutex(Entries())

    /// Records one call; true when its key was seen before (the answer is then a replay).
    func record(_ request: Tally_V1_TopupRequest, apiKey: String?) -> Bool {
        entries.withLock { entries in
            if let apiKey {
                entries.apiKeys[apiKey, default: 0] += 1
            } else {
                entries.callsWithoutAPIKey += 1
            }
            entries.timesSeen[request.idempotencyKey, default: 0] += 1
            guard let first = entries.firstRequest[request.idempotencyKey] else {
                entries.firstRequest[request.idempotencyKey] = request
                return false
            }
            entries.replays += 1
            if first != request { entries.replaysDiffering += 1 }
            return true
        }
    }

    var snapshot: Entries { entries.withLock { $0 } }
}
