import Codec
import NIOCore
import Synchronization
import Testing

@testable import RPCServer

/// The interceptor layer without a socket: a call double records how the call ended.
@Suite("Interceptors")
struct InterceptorTests {
    /// The transport's side of one call, recording what the dispatch layer did with it.
    final class RecordedCall: RPCCall, @unchecked Sendable {  // used from one task at a time
        var context: ServerContext { ServerContext(path: path, metadata: metadata, deadline: nil, peer: "test", call: self) }
        let path: String
        let metadata: Metadata
        private(set) var ended: RPCError??

        init(path: String = "/test.v1.Test/Call", metadata: Metadata = Metadata()) {
            self.path = path
            self.metadata = metadata
        }

        func receive() async throws -> ByteBuffer? { nil }
        func singleRequest() throws -> ByteBuffer { ByteBuffer() }
        var lastRequestCompressed: Bool { false }
        func setResponseCompression(_ enabled: Bool) {}
        func send(_ message: some ProtobufMessage) async throws {}
        func setInitialMetadata(_ metadata: Metadata) {}
        func addTrailingMetadata(_ metadata: Metadata) {}
        func finish(error: (any Error)?) { ended = .some(error.map { ($0 as? RPCError) ?? RPCError(.unknown, "\($0)") }) }
        func finish(with message: some ProtobufMessage) { ended = .some(nil) }
    }

    /// The contexts a handler was given.
    final class Seen: Sendable {
        let contexts = Mutex<[ServerContext]>([])
    }

    /// A method whose handler records the context it was given.
    static func method(access: RPCAccess, seen: Seen) -> RPCMethod {
        RPCMethod(path: "/test.v1.Test/Call", kind: .unary, access: access) { call, context in
            seen.contexts.withLock { $0.append(context) }
            call.finish(error: nil)
        }
    }

    static func metadata(_ pairs: [(String, String)]) -> Metadata {
        var metadata = Metadata()
        for (key, value) in pairs { metadata.add(key, value) }
        return metadata
    }

    @Test("admin methods: no configured key, no key, a wrong key and the right one", arguments: [
        (nil as String?, [] as [(String, String)], StatusCode.failedPrecondition as StatusCode?),
        ("s3cret", [], .unauthenticated),
        ("s3cret", [("x-admin-key", "s3cre")], .unauthenticated),
        ("s3cret", [("x-admin-key", "s3cret!")], .unauthenticated),
        ("s3cret", [("authorization", "Bearer wrong")], .unauthenticated),
        ("s3cret", [("x-admin-key", "s3cret")], nil),
        ("s3cret", [("authorization", "Bearer s3cret")], nil),
    ])
    func adminAuthentication(key: String?, sent: [(String, String)], refusal: StatusCode?) async throws {
        var router = RPCRouter(interceptors: [AdminAuthentication(key: key)])
        let seen = Seen()
        router.register(Self.method(access: .admin, seen: seen))
        let method = try #require(router.method(forPath: "/test.v1.Test/Call"))
        let call = RecordedCall(metadata: Self.metadata(sent))
        await method.body(call)
        let ended = try #require(call.ended)
        #expect(ended?.code == refusal)
        #expect(seen.contexts.withLock { $0.count } == (refusal == nil ? 1 : 0), "the handler runs only for an accepted call")
    }

    @Test("a method open to anyone gets no admin check, and pays for no interceptor")
    func openMethods() async throws {
        var router = RPCRouter(interceptors: [AdminAuthentication(key: "s3cret")])
        let seen = Seen()
        router.register(Self.method(access: .anyone, seen: seen))
        let method = try #require(router.method(forPath: "/test.v1.Test/Call"))
        #expect(method.interceptors.isEmpty)
        let call = RecordedCall()
        await method.body(call)
        #expect(call.ended == .some(nil) && seen.contexts.withLock { $0.count } == 1)
    }

    /// Adds `x-seen-by` to the context, or refuses when told to.
    struct Marker: ServerInterceptor {
        let name: String
        var refuse = false
        func applies(to method: RPCMethod) -> Bool { true }
        func intercept(_ context: inout ServerContext, method: RPCMethod) async throws {
            if refuse { throw RPCError(.resourceExhausted, "\(name) refused") }
            var metadata = context.metadata
            metadata.add("x-seen-by", name)
            context = ServerContext(path: context.path, metadata: metadata, deadline: context.deadline, peer: context.peer, call: context.call)
        }
    }

    @Test("interceptors run in order, hand their context on to the handler, and the first refusal ends the call")
    func chain() async throws {
        let seen = Seen()
        var passing = RPCRouter(interceptors: [Marker(name: "first"), Marker(name: "second")])
        passing.register(Self.method(access: .anyone, seen: seen))
        let call = RecordedCall()
        try await #require(passing.method(forPath: "/test.v1.Test/Call")).body(call)
        #expect(call.ended == .some(nil))
        #expect(seen.contexts.withLock { $0.first?.metadata.values("x-seen-by") } == [.string("first"), .string("second")])

        var refusing = RPCRouter(interceptors: [Marker(name: "first", refuse: true), Marker(name: "second")])
        refusing.register(Self.method(access: .anyone, seen: seen))
        let refused = RecordedCall()
        try await #require(refusing.method(forPath: "/test.v1.Test/Call")).body(refused)
        #expect(refused.ended??.code == .resourceExhausted && refused.ended??.message == "first refused")
        #expect(seen.contexts.withLock { $0.count } == 1, "the handler did not run")
    }
}
