import Foundation
import FuzzDriver
import Logging
import RPCServer

/// Fuzz target for the HTTP/2 connection as a whole: each input goes, after a valid client
/// preface and SETTINGS, to a real server in this process (Echo, Health and Reflection on one
/// event loop, 127.0.0.1) over a TCP connection of its own, so the bytes pass through the
/// socket, nghttp2 and every server callback and stream state they reach. The server must
/// survive every input and keep answering: after every `checkEvery` inputs, and at the end, a
/// fresh connection must get its PING acknowledged.
///
/// Blocking sockets on the fuzzing thread, the server on its own loop: nothing bridges the
/// synchronous fuzz callback into Swift tasks per input. Build and run with tools/fuzz/run.sh;
/// without `-DFUZZING` it replays or mutates inputs (see `FuzzDriver`).
enum ConnectionFuzz {
    static let checkEvery = 64
    nonisolated(unsafe) static var port: UInt16 = 0
    nonisolated(unsafe) static var inputs = 0

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(type: 4, flags: 0, stream: 0, payload: [])

    static func run(_ bytes: UnsafeRawBufferPointer) {
        if port == 0 { port = startServer() }
        guard let socket = ClientSocket(port: port) else { fatalError("ConnectionFuzz: the server refused a connection") }
        socket.send(preface)
        socket.send(Array(bytes))
        if verbose {
            // Replaying seeds: show which frames came back (a seed call should get HEADERS and DATA).
            var received: [UInt8] = []
            for _ in 0..<3 { received += socket.receive(timeout: 0.1) }
            print("  frames received (type/flags/stream):", frames(received).map { "\($0.type)/\($0.flags)/\($0.stream)" }.joined(separator: " "))
        } else {
            socket.drain(for: 0.01)  // the server's answers, until it closes or 10 ms pass
        }
        socket.close()
        inputs += 1
        if inputs % checkEvery == 0 { checkServerAnswers() }
    }

    /// A new connection's PING comes back acknowledged: the server's loop and nghttp2 still
    /// serve after everything sent so far.
    static func checkServerAnswers() {
        guard let socket = ClientSocket(port: port) else { fatalError("ConnectionFuzz: the server refused a connection") }
        defer { socket.close() }
        let opaque: [UInt8] = [0x74, 0x61, 0x6c, 0x6c, 0x79, 0x21, 0x21, 0x21]
        socket.send(preface + frame(type: 6, flags: 0, stream: 0, payload: opaque))
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            received += socket.receive(timeout: 0.1)
            if containsPingAck(received, opaque) { return }
        }
        fatalError("ConnectionFuzz: the server did not acknowledge a PING within 5 s after \(inputs) inputs")
    }

    /// `CONNECTION_FUZZ_VERBOSE=1`: print the frames each input got back.
    static let verbose = ProcessInfo.processInfo.environment["CONNECTION_FUZZ_VERBOSE"] == "1"

    /// Whether the frames received (the server's preface is its SETTINGS frame) hold a PING ACK.
    static func containsPingAck(_ bytes: [UInt8], _ opaque: [UInt8]) -> Bool {
        frames(bytes).contains { $0.type == 6 && $0.flags & 1 == 1 && $0.payload == opaque }
    }

    /// The whole frames in `bytes`.
    static func frames(_ bytes: [UInt8]) -> [(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8])] {
        var found: [(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8])] = []
        var offset = 0
        while offset + 9 <= bytes.count {
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            guard offset + 9 + length <= bytes.count else { break }
            let stream = UInt32(bytes[offset + 5] & 0x7f) << 24 | UInt32(bytes[offset + 6]) << 16 | UInt32(bytes[offset + 7]) << 8 | UInt32(bytes[offset + 8])
            found.append((bytes[offset + 3], bytes[offset + 4], stream, Array(bytes[(offset + 9)..<(offset + 9 + length)])))
            offset += 9 + length
        }
        return found
    }

    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    /// Starts the server once, before the first input (the one wait on a task here).
    static func startServer() -> UInt16 {
        var configuration = ServerConfiguration.defaults
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.eventLoops = 1
        var router = RPCRouter()
        router.register(EchoService())
        let health = HealthStatusBoard()
        health.set("", .serving)
        router.register(HealthService(board: health))
        router.register(ReflectionService(servedServices: router.serviceNames))
        var logger = Logger(label: "connection-fuzz")
        logger.logLevel = .critical
        let server = GRPCServer(configuration: configuration, router: router, logger: logger)
        let started = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var bound: Int?
        Task.detached {
            bound = try? await server.start().port
            started.signal()
        }
        started.wait()
        guard let bound else { fatalError("ConnectionFuzz: the server did not start") }
        retained = server
        return UInt16(bound)
    }

    nonisolated(unsafe) private static var retained: GRPCServer?
}

#if FUZZING
/// SwiftPM links an executable target's entry point under this name (its `main` is an alias),
/// so the fuzzer starts here and hands control to libFuzzer's driver.
@_cdecl("ConnectionFuzz_main")
func connectionFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.libFuzzer(argc, argv) { ConnectionFuzz.run($0) }
}
#else
@main
struct ConnectionFuzzMain {
    static func main() throws {
        try FuzzDriver.main("ConnectionFuzz") { ConnectionFuzz.run($0) }
        ConnectionFuzz.checkServerAnswers()
    }
}
#endif
