import Foundation
import Units
public import Logging
public import Storage

/// The queue worker's job: call the provider for one top-up, at most one charge ever.
///
/// 1. Claim the top-up in Postgres (a lease, an attempt counted): a second delivery of the
///    same job, or a job the sweeper re-queued, finds it leased or final and stops.
/// 2. From the second attempt on, a previous one may have charged (a worker killed mid-call, a
///    timeout): ask the provider for the reference's status before charging again.
/// 3. Charge; an ambiguous outcome is resolved by asking the status at once.
/// 4. Settle in one statement: the calls go to `topup_attempts`, the new state to `topups`,
///    fenced by the lease (a worker that lost its lease changes nothing but the audit).
/// Retryable failures put the top-up back to PENDING with a backoff; after `maxAttempts`
/// charges it fails. A status the provider cannot give is never taken as "not charged".
public struct TopupProcessor: Sendable {
    let topups: Topups
    let provider: any TopupProvider
    let workerID: String
    let logger: Logger

    public init(topups: Topups, provider: any TopupProvider, instanceID: String, logger: Logger) {
        self.topups = topups
        self.provider = provider
        self.workerID = instanceID
        self.logger = logger
    }

    private var configuration: TopupsConfiguration { topups.configuration }

    public func process(_ job: Job) async throws {
        let id = String(decoding: job.payload, as: UTF8.self)
        let owner = "\(workerID)/\(job.lease)"
        let claimed: Topup?
        do {
            claimed = try await topups.database.withConnection { connection in
                if let topup = try await TopupStore.claim(id: id, owner: owner, lease: configuration.lease, on: connection) {
                    return topup
                }
                // Final (done), unknown (nothing to do), leased by another worker or not due:
                // come back when the lease or the backoff has passed.
                if let (state, wait) = try await TopupStore.blocker(id: id, on: connection), !state.isFinal {
                    throw JobNotDue(retryAfter: max(wait, .milliseconds(50)))
                }
                return nil
            }
        } catch let error as PostgresError where error.rpcError.code == .unavailable {
            throw DependencyUnavailable(retryAfter: .seconds(1), reason: "\(error)")
        }
        guard let topup = claimed else { return }
        await topups.changes.announce(id)
        let decision = await decide(topup)
        let settled: Topup?
        do {
            settled = try await topups.database.withConnection { connection in
                try await TopupStore.settle(
                    id: id, owner: owner, state: decision.state, failureReason: decision.failureReason,
                    providerReference: decision.providerReference, nextAttemptIn: decision.retryIn, calls: decision.calls, on: connection)
            }
        } catch let error as PostgresError where error.rpcError.code == .unavailable {
            // The lease runs out and the next attempt asks the provider first: nothing is charged twice.
            throw DependencyUnavailable(retryAfter: configuration.lease, reason: "\(error)")
        }
        guard settled != nil else {
            logger.warning("lost the lease on a top-up while calling the provider; its calls are recorded, its state left to the holder",
                           metadata: ["topup": "\(id)"])
            return
        }
        await topups.changes.announce(id)
        if let retryIn = decision.retryIn { throw JobNotDue(retryAfter: retryIn) }
    }

    /// What became of one claim: the state to settle on and the provider calls made.
    struct Decision {
        var state: Topup.State
        var failureReason = ""
        var providerReference = ""
        var retryIn: Duration?
        var calls: [ProviderCall] = []
    }

    func decide(_ topup: Topup) async -> Decision {
        var calls: [ProviderCall] = []
        // Every claim so far, this one included, may have charged at most once.
        let attempt = topup.attempts

        func status() async -> ProviderStatus {
            let started = Date(), clock = ContinuousClock.now
            let status = await provider.status(of: topup.id, timeout: configuration.providerTimeout)
            calls.append(ProviderCall(attempt: attempt, kind: "status", outcome: status.label, detail: status.detail,
                                      latencyMs: (ContinuousClock.now - clock).inSeconds * 1000, startedAt: started))
            return status
        }

        func settled(by status: ProviderStatus) -> Decision? {
            switch status {
            case .charged(let reference): Decision(state: .succeeded, providerReference: reference, calls: calls)
            case .declined(let reason): Decision(state: .failed, failureReason: "declined by the provider: \(reason)", calls: calls)
            case .notFound: nil
            case .unknown(let reason): retry("the provider's status is unknown (\(reason))", mayFail: false)
            }
        }

        func retry(_ reason: String, mayFail: Bool) -> Decision {
            // A top-up whose status is unknown might have been charged: it never fails on that
            // alone, until three times the attempts have passed (then an operator reconciles).
            let limit = mayFail ? configuration.maxAttempts : configuration.maxAttempts * 3
            if attempt >= limit {
                return Decision(state: .failed, failureReason: "\(reason) after \(attempt) attempts", calls: calls)
            }
            return Decision(state: .pending, failureReason: reason, retryIn: configuration.backoff(afterAttempt: attempt), calls: calls)
        }

        if attempt > 1, let decision = settled(by: await status()) { return decision }

        let started = Date(), clock = ContinuousClock.now
        let outcome = await provider.charge(
            ProviderCharge(reference: topup.id, phoneNumber: topup.phoneNumber, amountMinorUnits: topup.amountMinorUnits,
                           currency: topup.currency, carrier: topup.carrier, attempt: attempt),
            timeout: configuration.providerTimeout)
        calls.append(ProviderCall(attempt: attempt, kind: "charge", outcome: outcome.label, detail: outcome.detail,
                                  latencyMs: (ContinuousClock.now - clock).inSeconds * 1000, startedAt: started))
        switch outcome {
        case .succeeded(let reference):
            return Decision(state: .succeeded, providerReference: reference, calls: calls)
        case .declined(let reason):
            return Decision(state: .failed, failureReason: "declined by the provider: \(reason)", calls: calls)
        case .retryable(let reason):
            return retry("provider: \(reason)", mayFail: true)
        case .ambiguous(let reason):
            return settled(by: await status()) ?? retry("provider: \(reason)", mayFail: true)
        }
    }

    /// A worker running this processor on the top-ups queue.
    public func worker(queue: JobQueue) -> JobWorker {
        let configuration = JobWorker.Configuration(
            concurrency: self.configuration.workers, batchSize: max(1, min(100, self.configuration.workers)),
            pollInterval: .milliseconds(20), drainTimeout: self.configuration.providerTimeout + .seconds(1))
        return JobWorker(queue: queue, configuration: configuration, logger: logger) { job in
            try await self.process(job)
        }
    }
}

extension ProviderOutcome {
    var label: String {
        switch self {
        case .succeeded: "succeeded"
        case .declined: "declined"
        case .retryable: "retryable"
        case .ambiguous: "ambiguous"
        }
    }

    var detail: String {
        switch self {
        case .succeeded(let reference): reference
        case .declined(let reason), .retryable(let reason), .ambiguous(let reason): reason
        }
    }
}

extension ProviderStatus {
    var label: String {
        switch self {
        case .charged: "charged"
        case .declined: "declined"
        case .notFound: "not_found"
        case .unknown: "unknown"
        }
    }

    var detail: String {
        switch self {
        case .charged(let reference): reference
        case .declined(let reason), .unknown(let reason): reason
        case .notFound: ""
        }
    }
}
