import Codec
import ServiceContextModule
import Storage
import W3CTraceContext

/// A call's trace: the client's W3C `traceparent`/`tracestate` metadata when it sent a valid
/// one (a new span of it), else a new trace. The handler runs with it in its `ServiceContext`,
/// so its log lines, and the jobs it queues, name the trace.
struct CallTrace {
    let context: TraceContext

    /// Ids come from `random`, the connection's own generator (seeded from the system's), so a
    /// call costs no system call for them.
    init(metadata: Metadata, random: inout some RandomNumberGenerator) {
        if let parent = metadata["traceparent"], let parsed = try? TraceContext(traceParentHeaderValue: parent, traceStateHeaderValue: metadata["tracestate"]) {
            context = TraceContext(traceID: parsed.traceID, spanID: .random(using: &random), flags: parsed.flags, state: parsed.state)
        } else {
            context = TraceContext(traceID: .random(using: &random), spanID: .random(using: &random), flags: [], state: TraceState())
        }
    }

    var serviceContext: ServiceContext {
        var service = ServiceContext.topLevel
        service.traceContext = context
        return service
    }

    var traceID: String { context.traceID.description }
}

/// A fast generator for trace and span ids (xoshiro256**), one per connection (on its event
/// loop), seeded from the system generator: ids need to be unique, not secret.
struct TraceIDGenerator: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        state = (system.next(), system.next(), system.next(), system.next())
    }

    mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
