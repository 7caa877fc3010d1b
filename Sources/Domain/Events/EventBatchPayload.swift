import Storage
import Codec

/// A queued batch of events as a job payload: when Tally received it (8 bytes, big-endian
/// unix ms) followed by the events as a protobuf `TrackRequest`.
struct EventBatchPayload {
    var receivedAtMs: Int64
    var events: [Tally_V1_Event]

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + events.count * 64)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: receivedAtMs >> Int64(shift))) }
        var request = Tally_V1_TrackRequest()
        request.events = events
        bytes.append(contentsOf: request.encodedBytes())
        return bytes
    }

    init(receivedAtMs: Int64, events: [Tally_V1_Event]) {
        self.receivedAtMs = receivedAtMs
        self.events = events
    }

    init(decoding bytes: [UInt8]) throws {
        guard bytes.count >= 8 else { throw ProtobufError(messageName: "EventBatchPayload", reason: "shorter than its header") }
        receivedAtMs = bytes.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        events = try Tally_V1_TrackRequest(protobuf: Array(bytes.dropFirst(8))).events
    }
}
