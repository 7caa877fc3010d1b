public import ServiceContextModule
public import W3CTraceContext

/// The W3C trace context of the work at hand, in the task's `ServiceContext` (the context
/// swift-distributed-tracing and its instrumented libraries carry): a call's (from its
/// `traceparent`/`tracestate` metadata, or a new trace when it sent none), or a queued job's
/// (the context of the call that queued it, carried with the job). Log lines read it through
/// the logging metadata provider, so every line of a call or job names its trace.
public enum TraceContextKey: ServiceContextKey {
    public typealias Value = TraceContext
    public static var nameOverride: String? { "traceparent" }
}

extension ServiceContext {
    public var traceContext: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }

    /// The current task's trace, as the `traceparent` header spells it (jobs carry it so).
    public static var currentTraceParent: String? {
        ServiceContext.current?.traceContext?.traceParentHeaderValue
    }

    /// A context holding `trace`: a W3C `traceparent` value (and `tracestate`) when it parses,
    /// else a new trace, so work that arrived without one is still told apart in the logs.
    public static func tracing(traceParent: String?, traceState: String? = nil) -> ServiceContext {
        var context = ServiceContext.topLevel
        context.traceContext = traceParent.flatMap { try? TraceContext(traceParentHeaderValue: $0, traceStateHeaderValue: traceState) }
            ?? TraceContext(traceID: .random(), spanID: .random(), flags: [], state: TraceState())
        return context
    }
}
