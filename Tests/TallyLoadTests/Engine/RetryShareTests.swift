import Codec
import LoadKit
import Testing

/// `--retry-share` over the wire: top-ups with the built-in template against a test
/// TopupService that answers a key it has seen with `replayed`.
@Suite("Retries of earlier requests")
struct RetryShareTests {
    @Test("a tenth of the calls resend an earlier top-up whole; the server replays exactly those")
    func tenthResent() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("tally.v1.TopupService/Topup", stop: .requests(400)) {
                $0.metadata.add("x-api-key", "tly_test_partner")
                $0.retryShare = 0.1
            }
            let total = try await LoadRunner(configuration: configuration).run().total
            #expect(total.calls == 400 && total.errors == 0)
            // Calls 10, 20, ... 400 resend; with 8 in flight each of them finds earlier requests.
            #expect(total.resent == 40)
            #expect(total.flagged == 40, "the report reads replayed off the responses")
            #expect(total.resentWhileOriginalInFlight > 0, "some retries overlap their original")

            let seen = server.topups.snapshot
            #expect(seen.apiKeys == ["tly_test_partner": 400])
            #expect(seen.callsWithoutAPIKey == 0)
            #expect(seen.firstRequest.count == 360, "keys are unique apart from the resent ones")
            #expect(seen.replays == 40)
            #expect(seen.replaysDiffering == 0, "a retry is the very request it repeats")
        }
    }

    @Test("the server sees exactly ⌊n · share⌋ retries, and none without a share", arguments: [0.0, 0.25])
    func share(_ share: Double) async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("tally.v1.TopupService/Topup", stop: .requests(200), concurrency: 3) {
                $0.retryShare = share
            }
            let total = try await LoadRunner(configuration: configuration).run().total
            let expected = Int(200 * share)
            #expect(total.calls == 200 && total.errors == 0)
            #expect(total.resent == expected)
            #expect(total.flagged == expected)
            let seen = server.topups.snapshot
            #expect(seen.firstRequest.count == 200 - expected)
            #expect(seen.replays == expected && seen.replaysDiffering == 0)
            #expect(seen.callsWithoutAPIKey == 200, "no -H, no API key")
        }
    }

    @Test("the built-in Topup request: a key naming the run and call, a German mobile, 1 to 50 euros")
    func builtInTopups() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("tally.v1.TopupService/Topup", stop: .requests(300))
            _ = try await LoadRunner(configuration: configuration).run()
            let requests = Array(server.topups.snapshot.firstRequest.values)
            #expect(requests.count == 300)
            let runs = Set(requests.map { $0.idempotencyKey.split(separator: "-")[1] })
            #expect(runs.count == 1)
            let sequences = Set(requests.compactMap { Int($0.idempotencyKey.split(separator: "-")[2]) })
            #expect(sequences == Set(1...300))
            for request in requests {
                #expect(request.idempotencyKey.hasPrefix("load-"))
                #expect(request.phoneNumber.hasPrefix("+49151") && request.phoneNumber.count == 14)
                #expect(!["0000", "0001", "0002", "0003"].contains(String(request.phoneNumber.suffix(4))))
                #expect((100...5000).contains(request.amount?.minorUnits ?? 0))
                #expect(request.amount?.currency == "EUR")
                #expect(["telekom-de", "vodafone-de", "o2-de"].contains(request.carrier))
            }
        }
    }
}
