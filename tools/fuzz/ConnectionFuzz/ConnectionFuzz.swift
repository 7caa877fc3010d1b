import Codec
import Dispatch
import FuzzDriver
import Logging
import NIOCore
import NIOEmbedded
import RPCServer

/// libFuzzer target for the HTTP/2 connection as a whole: a valid client preface, then
/// arbitrary bytes, through nghttp2 into the server's own connection handler and its
/// callbacks, streams, dispatch and handlers (services that need no database: bench Echo,
/// grpc.testing.TestService, Health), on an in-memory channel.
///
/// The server must not crash or hang, and what it writes must be well-formed HTTP/2 from a
/// server (`ServerFrames`). The first input byte says how the rest is cut into reads, as a
/// socket would deliver it. Build and run with tools/fuzz/run.sh; without `-DFUZZING` it
/// replays or mutates inputs (see `FuzzDriver`).
enum ConnectionFuzz {
    /// The client connection preface and an empty SETTINGS frame.
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]

    static let router: RPCRouter = {
        var router = RPCRouter()
        router.register(EchoService())
        router.register(InteropTestService(maxResponseBytes: configuration.maxSendMessageSize))
        router.register(HealthService(board: HealthStatusBoard()))
        return router
    }()

    /// The defaults, with limits small enough that one input stays cheap.
    static let configuration: ServerConfiguration = {
        var configuration = ServerConfiguration.defaults
        configuration.maxReceiveMessageSize = 64 * 1024
        configuration.maxSendMessageSize = 256 * 1024
        configuration.maxConcurrentStreams = 100
        return configuration
    }()

    static let logger: Logger = {
        var logger = Logger(label: "connection-fuzz")
        logger.logLevel = .critical
        return logger
    }()

    /// Rounds of running the loop and reading output before the server counts as hung.
    static let maxRounds = 10_000
    /// Output after which an input is done: a client that opens a large window and asks for
    /// many responses gets them, which is not a hang, only slow to fuzz.
    static let maxOutputBytes = 8 * 1024 * 1024

    static func run(_ bytes: UnsafeRawBufferPointer) {
        let input = [UInt8](bytes)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                try await exchange(input)
            } catch {
                preconditionFailure("the harness failed: \(error)")
            }
            done.signal()
        }
        done.wait()
    }

    static func exchange(_ input: [UInt8]) async throws {
        let loop = NIOAsyncTestingEventLoop()
        let handler = GRPCServer.connectionHandler(
            configuration: configuration, router: router, executor: EventLoopTaskExecutor(eventLoop: loop), logger: logger)
        let channel = await NIOAsyncTestingChannel(handler: handler, loop: loop)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50051)).get()
        var frames = ServerFrames()
        let readSize = 1 + Int(input.first ?? 0) * 16
        var reads = [preface]
        var offset = 1
        while offset < input.count {
            reads.append(Array(input[offset..<min(input.count, offset + readSize)]))
            offset += readSize
        }
        for read in reads where frames.byteCount < maxOutputBytes {
            do {
                try await channel.writeInbound(ByteBuffer(bytes: read))
            } catch ChannelError.ioOnClosedChannel {
                break  // the server closed the connection
            }
            try await drain(channel, into: &frames)
        }
        // Every timer fires: deadlines, keepalive PINGs and their timeout, idle and age limits.
        await loop.advanceTime(to: .now() + .hours(3))
        try await drain(channel, into: &frames)
        frames.verify(closedByServer: !channel.isActive)
        _ = try? await channel.finish(acceptAlreadyClosed: true)
        try await loop.shutdownGracefully()
    }

    /// Runs the loop and takes the server's output until it writes nothing more.
    static func drain(_ channel: NIOAsyncTestingChannel, into frames: inout ServerFrames) async throws {
        for _ in 0..<maxRounds {
            await channel.testingEventLoop.run()
            var wrote = false
            while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                frames.append(buffer)
                wrote = true
            }
            if !wrote || frames.byteCount >= maxOutputBytes { return }
        }
        preconditionFailure("the server kept writing for \(maxRounds) rounds without input")
    }
}

#if FUZZING
@_cdecl("ConnectionFuzz_main")
func connectionFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.libFuzzer(argc, argv) { ConnectionFuzz.run($0) }
}
#else
@main
struct ConnectionFuzzMain {
    static func main() throws {
        try FuzzDriver.main("ConnectionFuzz") { ConnectionFuzz.run($0) }
    }
}
#endif
