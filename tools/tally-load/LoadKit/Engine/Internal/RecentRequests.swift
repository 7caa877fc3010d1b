import NIOCore
import Synchronization

/// The last requests of one workload sent fresh, shared by every worker of the run, from which
/// `--retry-share` draws the calls it sends again whole (same bytes, so the same idempotency
/// key): what a client does when it retries after a timeout or a lost answer.
///
/// It holds as many requests as the run has calls in flight, so a retry mostly repeats a call
/// that is still running on another worker or has only just ended; each entry says which.
final class RecentRequests: Sendable {
    /// One fresh request, and whether its own call is still waiting for its answer.
    final class Entry: Sendable {
        let request: ByteBuffer
        private let answered = Atomic<Bool>(false)

        init(_ request: ByteBuffer) {
            self.request = request
        }

        var isInFlight: Bool { !answered.load(ordering: .relaxed) }

        func markAnswered() { answered.store(true, ordering: .relaxed) }
    }

    private struct Ring {
        var entries: [Entry] = []
        var next = 0
    }

    private let capacity: Int
    private let ring = Mutex(Ring())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Keeps `request` in place of the oldest one once the ring is full.
    func remember(_ request: ByteBuffer) -> Entry {
        let entry = Entry(request)
        ring.withLock { ring in
            if ring.entries.count < capacity {
                ring.entries.append(entry)
            } else {
                ring.entries[ring.next] = entry
                ring.next = (ring.next + 1) % capacity
            }
        }
        return entry
    }

    /// One of the remembered requests, uniformly; nil before any was sent.
    func pick(_ random: inout FastRandom) -> Entry? {
        let roll = random.next()
        return ring.withLock { ring in
            ring.entries.isEmpty ? nil : ring.entries[Int(roll % UInt64(ring.entries.count))]
        }
    }
}
