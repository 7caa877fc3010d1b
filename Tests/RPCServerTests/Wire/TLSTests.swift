import Codec
import Foundation
import GRPCClient
import NIOPosix
import RPCServer
import Testing

/// gRPC over TLS with ALPN h2, against a throwaway self-signed certificate made by openssl.
@Suite("Wire: TLS", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs /usr/bin/openssl"))
struct TLSTests {
    /// A self-signed certificate for localhost / 127.0.0.1 in a fresh temporary directory.
    static func makeCertificate() throws -> (directory: URL, certificate: String, key: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", key, "-out", certificate,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return (directory, certificate, key)
    }

    @Test("TLS: trusted CA, insecure mode, and an untrusted certificate")
    func tls() async throws {
        let files = try Self.makeCertificate()
        defer { try? FileManager.default.removeItem(at: files.directory) }
        try await TestServer.with({ $0.tls = .init(certificateChainPath: files.certificate, privateKeyPath: files.key) }) { server in
            let request = Bench_V1_EchoRequest(payload: payload(1000))
            try await server.withConnection({ $0.tls = .init(caCertificatePath: files.certificate, serverName: "localhost") }) { connection in
                let response = try await connection.unary("/bench.v1.Echo/Echo", request, as: Bench_V1_EchoResponse.self)
                #expect(response.message.payload == request.payload)
                let call = try connection.makeCall("/bench.v1.Echo/Expand")
                try await call.send(Bench_V1_EchoRequest(payload: [1], repeat: 100))
                try await call.finishSending()
                var count = 0
                for try await _ in call.responses { count += 1 }
                #expect(count == 100)
            }
            try await server.withConnection({ $0.tls = .init(insecure: true) }) { connection in
                let response = try await connection.unary("/bench.v1.Echo/Echo", request, as: Bench_V1_EchoResponse.self)
                #expect(response.message.payload == request.payload)
            }
            let untrusted = await #expect(throws: CallError.self) {
                _ = try await GRPCConnection.connect(
                    server.clientConfiguration { $0.tls = .init(serverName: "localhost") }, group: MultiThreadedEventLoopGroup.singleton)
            }
            #expect(untrusted?.code == .unavailable)
            // Plaintext HTTP/2 against the TLS port fails cleanly too.
            let plaintext = await #expect(throws: CallError.self) {
                let connection = try await GRPCConnection.connect(
                    server.clientConfiguration { $0.connectTimeout = .seconds(2) }, group: MultiThreadedEventLoopGroup.singleton)
                defer { Task { await connection.close() } }
                _ = try await connection.unary("/bench.v1.Echo/Echo", request, as: Bench_V1_EchoResponse.self)
            }
            #expect(plaintext?.code == .unavailable)
        }
    }
}
