public import Codec
import Synchronization
import Units

/// One stream's changes waiting to be sent: coalesced per user (a newer state replaces the
/// queued one), handed to the stream's writer at most once per interval, a snapshot at once.
///
/// Bounded: it holds at most one state per subscribed user, and a stream whose writer stays
/// blocked (the client reads nothing) for `stallLimit` while changes wait is ended with
/// RESOURCE_EXHAUSTED, so a slow subscriber never grows memory past its subscription.
public final class PresenceOutbox: Sendable {
    struct State {
        var pending: [String: PresenceState] = [:]
        /// A snapshot waits: send without waiting for the interval.
        var urgent = false
        var lastSent: ContinuousClock.Instant?
        /// The writer waits for the next batch.
        var waiter: UnsafeContinuation<Tally_V1_PresenceServerMessage?, Never>?
        /// The writer took a batch at this instant and has not come back for the next yet.
        var writingSince: ContinuousClock.Instant?
        /// In the ticker's set of outboxes to look at.
        var scheduled = false
        var ended = false

        func isDue(_ now: ContinuousClock.Instant, interval: Duration) -> Bool {
            urgent || lastSent.map { now >= $0 + interval } ?? true
        }

        /// The pending changes as one message, if the writer waits and they are due.
        mutating func takeIfDue(_ now: ContinuousClock.Instant, interval: Duration)
            -> (UnsafeContinuation<Tally_V1_PresenceServerMessage?, Never>, Tally_V1_PresenceServerMessage)?
        {
            guard let waiter, !pending.isEmpty, isDue(now, interval: interval) else { return nil }
            self.waiter = nil
            return (waiter, take(now))
        }

        mutating func take(_ now: ContinuousClock.Instant) -> Tally_V1_PresenceServerMessage {
            var message = Tally_V1_PresenceServerMessage()
            message.changes = pending.sorted { $0.key < $1.key }.map { $0.value.change(of: $0.key) }
            pending.removeAll(keepingCapacity: pending.count <= 16)
            urgent = false
            lastSent = now
            writingSince = now
            return message
        }
    }

    /// What the ticker found.
    enum Tick: Equatable {
        /// Nothing left to do until the next change.
        case idle
        /// Changes wait for the interval or the writer.
        case waiting
        /// The writer has been blocked too long: end the stream.
        case stalled
    }

    let interval: Duration
    let stallLimit: Duration
    /// Ends the stream (a stalled writer).
    let terminate: @Sendable (RPCError) -> Void
    private let state = Mutex(State())

    init(interval: Duration, stallLimit: Duration, terminate: @escaping @Sendable (RPCError) -> Void) {
        self.interval = interval
        self.stallLimit = stallLimit
        self.terminate = terminate
    }

    /// The next message to send, once one is due; nil once the outbox ended (or the task was
    /// cancelled).
    public func next() async -> Tally_V1_PresenceServerMessage? {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Tally_V1_PresenceServerMessage?, Never>) in
                let now = ContinuousClock.now
                let ready: Tally_V1_PresenceServerMessage?? = state.withLock { state in
                    state.writingSince = nil
                    if state.ended { return .some(nil) }
                    if !state.pending.isEmpty && state.isDue(now, interval: interval) { return .some(state.take(now)) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            end()
        }
    }

    /// Queues `change` of `user` (dropped when an equal or newer state of the user is queued);
    /// `urgent` for a snapshot. Returns true when the ticker must look at this outbox later.
    func offer(_ change: PresenceState, of user: String, urgent: Bool = false) -> Bool {
        offer([(user, change)], urgent: urgent)
    }

    /// Queues several users' states as one (a snapshot goes out as one message).
    func offer(_ changes: [(user: String, state: PresenceState)], urgent: Bool) -> Bool {
        let now = ContinuousClock.now
        let (wake, schedule): ((UnsafeContinuation<Tally_V1_PresenceServerMessage?, Never>, Tally_V1_PresenceServerMessage)?, Bool) =
            state.withLock { state in
                guard !state.ended else { return (nil, false) }
                var queued = false
                for (user, change) in changes {
                    if let waiting = state.pending[user], waiting.version >= change.version { continue }
                    state.pending[user] = change
                    queued = true
                }
                guard queued else { return (nil, false) }
                if urgent { state.urgent = true }
                if let wake = state.takeIfDue(now, interval: interval) { return (wake, false) }
                guard !state.scheduled else { return (nil, false) }
                state.scheduled = true
                return (nil, true)
            }
        if let (waiter, message) = wake { waiter.resume(returning: message) }
        return schedule
    }

    /// Drops queued changes of users no longer subscribed.
    func retain(_ users: Set<String>) {
        state.withLock { state in state.pending = state.pending.filter { users.contains($0.key) } }
    }

    /// The ticker's look: sends what became due, or finds the writer stalled.
    func tick(_ now: ContinuousClock.Instant) -> Tick {
        let (wake, outcome): ((UnsafeContinuation<Tally_V1_PresenceServerMessage?, Never>, Tally_V1_PresenceServerMessage)?, Tick) =
            state.withLock { state in
                if state.ended || state.pending.isEmpty {
                    state.scheduled = false
                    return (nil, .idle)
                }
                if let since = state.writingSince, now - since > stallLimit { return (nil, .stalled) }
                if let wake = state.takeIfDue(now, interval: interval) {
                    state.scheduled = false
                    return (wake, .idle)
                }
                return (nil, .waiting)
            }
        if let (waiter, message) = wake { waiter.resume(returning: message) }
        return outcome
    }

    /// No more messages: a waiting writer gets nil.
    func end() {
        let waiter = state.withLock { state in
            state.ended = true
            state.pending = [:]
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The client has read nothing for `stallLimit` while changes wait: the stream ends.
    func stall() {
        end()
        terminate(RPCError(
            .resourceExhausted,
            "presence stream ended: the client read no message for \(stallLimit.milliseconds) ms while changes waited"))
    }

    /// Changes queued now (tests, stats).
    var queued: Int { state.withLock { $0.pending.count } }
}
