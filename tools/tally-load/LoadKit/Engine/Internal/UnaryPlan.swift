import Codec
import NIOCore

/// What every unary call of a run needs from the configuration, built once per run and
/// shared by all workers: a thousand workers then read one copy, which stays in cache,
/// instead of a thousand copies that each miss it.
final class UnaryPlan: Sendable {
    let workloads: [Workload]
    /// Running sums of the workloads' weights, for drawing one by weight.
    let cumulativeWeights: [Double]
    /// Per workload: its framed request when the template is constant (encoded once for the
    /// whole run and shared by every call; the client never writes to it), nil when each call
    /// needs fresh bytes.
    let constantRequests: [ByteBuffer?]
    /// Per unary workload when `retryShare` > 0: the fresh requests retries are drawn from.
    let recentRequests: [RecentRequests?]
    let retryShare: Double
    /// Per workload: the response field the report counts (`countedField`), when it has one.
    let responseFlags: [ResponseFlag?]
    let metadata: Metadata
    let timeout: Duration?
    let isOpenLoop: Bool
    let allocator = ByteBufferAllocator()

    init(configuration: LoadConfiguration) {
        self.workloads = configuration.workloads
        var total = 0.0
        self.cumulativeWeights = configuration.workloads.map { workload in
            total += workload.weight
            return total
        }
        let allocator = self.allocator
        self.constantRequests = configuration.workloads.map { workload in
            guard workload.rpc.kind == .unary, workload.data.templates.count == 1,
                let bytes = workload.data.templates[0].constantBytes
            else { return nil }
            return Self.frame(bytes, allocator: allocator)
        }
        self.retryShare = configuration.retryShare
        self.recentRequests = configuration.workloads.map { workload in
            workload.rpc.kind == .unary && configuration.retryShare > 0 ? RecentRequests(capacity: configuration.concurrency) : nil
        }
        let schema = RPCCatalog.standard.schema
        self.responseFlags = configuration.workloads.map { workload in
            guard workload.rpc.kind == .unary, let name = configuration.countedField else { return nil }
            return ResponseFlag(named: name, in: schema.message(workload.rpc.output))
        }
        self.metadata = configuration.metadata
        self.timeout = configuration.timeout
        self.isOpenLoop = configuration.rate != nil
    }

    /// A workload index drawn by weight (no draw for a single workload).
    func pick(_ random: inout FastRandom) -> Int {
        guard cumulativeWeights.count > 1, let total = cumulativeWeights.last else { return 0 }
        let roll = Double.random(in: 0..<total, using: &random)
        return cumulativeWeights.firstIndex { roll < $0 } ?? cumulativeWeights.count - 1
    }

    /// Whether call `sequence` resends an earlier request: exactly ⌊n · share⌋ of the calls
    /// 1...n do, spread evenly, so the count is known in advance rather than drawn.
    func resends(_ sequence: Int) -> Bool {
        guard retryShare > 0 else { return false }
        return Int(Double(sequence) * retryShare) > Int(Double(sequence - 1) * retryShare)
    }

    /// The gRPC framing of an uncompressed message: flag 0, big-endian length, payload.
    static func frame(_ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }
}
