import Codec
import RPCServer
import Synchronization

/// What the probe handlers saw, per call id (the request payload as text).
final class ProbeLog: Sendable {
    enum Event: Hashable, Sendable {
        case started
        case cancelled
        case completed
    }

    private let events = Mutex<[String: [Event]]>([:])

    func record(_ id: String, _ event: Event) {
        events.withLock { $0[id, default: []].append(event) }
    }

    func events(_ id: String) -> [Event] {
        events.withLock { $0[id] ?? [] }
    }

    private struct Gates {
        var waiting: [String: CheckedContinuation<Void, Never>] = [:]
        var released: Set<String> = []
    }

    private let gates = Mutex(Gates())

    /// Holds the calling handler until the test calls `release(id)`: a call kept in flight
    /// for exactly as long as a test needs, however slow the machine.
    func hold(_ id: String) async {
        await withCheckedContinuation { continuation in
            let resumeNow = gates.withLock { gates in
                if gates.released.remove(id) != nil { return true }
                gates.waiting[id] = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func release(_ id: String) {
        let continuation = gates.withLock { gates -> CheckedContinuation<Void, Never>? in
            if let continuation = gates.waiting.removeValue(forKey: id) { return continuation }
            gates.released.insert(id)
            return nil
        }
        continuation?.resume()
    }
}

/// Test-only service whose handlers report to a `ProbeLog` whether they started, and whether
/// they ended by cancellation (client RST_STREAM, deadline) or ran to completion.
struct ProbeService: RPCService {
    let log: ProbeLog

    var methods: [RPCMethod] {
        [
            // Waits up to 30 s (or until cancelled), then echoes the request.
            .unary("/test.Probe/Hang") { [log] (request: RawMessage, _: ServerContext) in
                let id = String(decoding: request.bytes, as: UTF8.self)
                log.record(id, .started)
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    log.record(id, .cancelled)
                    throw error
                }
                log.record(id, .completed)
                return request
            },
            // Payload "id:milliseconds": sleeps that long, then echoes the request.
            .unary("/test.Probe/Sleep") { [log] (request: RawMessage, _: ServerContext) in
                let text = String(decoding: request.bytes, as: UTF8.self)
                let parts = text.split(separator: ":")
                let id = String(parts.first ?? "")
                log.record(id, .started)
                try await Task.sleep(for: .milliseconds(parts.count > 1 ? Int(parts[1]) ?? 0 : 0))
                log.record(id, .completed)
                return request
            },
            // Waits until the test releases the call's id, then echoes the request.
            .unary("/test.Probe/Held") { [log] (request: RawMessage, _: ServerContext) in
                let id = String(decoding: request.bytes, as: UTF8.self)
                log.record(id, .started)
                await log.hold(id)
                log.record(id, .completed)
                return request
            },
            // Writes 64 KiB messages (at most 64 MiB) as fast as the client lets it: a client
            // that does not read leaves the handler waiting in `write` for flow control.
            .serverStreaming("/test.Probe/Flood") {
                [log] (request: RawMessage, writer: ResponseWriter<RawMessage>, _: ServerContext) in
                let id = String(decoding: request.bytes, as: UTF8.self)
                log.record(id, .started)
                let chunk = RawMessage([UInt8](repeating: 7, count: 64 * 1024))
                do {
                    for _ in 0..<1024 { try await writer.write(chunk) }
                } catch {
                    log.record(id, .cancelled)
                    throw error
                }
                log.record(id, .completed)
            },
            // Reads the request stream until it ends or the call is cancelled.
            .bidirectionalStreaming("/test.Probe/HangStream") {
                [log] (requests: RequestStream<RawMessage>, writer: ResponseWriter<RawMessage>, _: ServerContext) in
                var id = ""
                do {
                    for try await request in requests {
                        id = String(decoding: request.bytes, as: UTF8.self)
                        log.record(id, .started)
                        try await writer.write(request)
                    }
                } catch {
                    log.record(id, .cancelled)
                    throw error
                }
                log.record(id, .completed)
            },
        ]
    }
}
