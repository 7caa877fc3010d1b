import Codec
import FuzzDriver
import NIOCore

/// libFuzzer target for what a client controls on the way in: the gRPC deframer (prefix,
/// lengths, compressed flag, gzip) and protobuf decoding of the request types.
///
/// The first input byte picks the deframer's settings, the rest is DATA split into chunks
/// at positions the input also chooses. Build and run with tools/fuzz/run.sh; without
/// `-DFUZZING` it replays or mutates inputs (see `FuzzDriver`).
enum CodecFuzz {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let control = bytes.first else { return }
        let data = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        let encoding: MessageEncoding? = control & 1 == 0 ? nil : .gzip
        let limit = control & 2 == 0 ? 4 * 1024 * 1024 : 64
        var deframer = MessageDeframer(maxMessageSize: limit, encoding: encoding)
        let chunk = max(1, Int(control >> 2))
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + chunk)
            deframer.append(UnsafeRawBufferPointer(rebasing: data[offset..<end]))
            offset = end
            do {
                while let message = try deframer.next() {
                    FuzzedMessages.decodeAll(message)
                }
            } catch {
                return
            }
        }
    }
}

#if FUZZING
/// SwiftPM links an executable target's entry point under this name (its `main` is an alias),
/// so the fuzzer starts here and hands control to libFuzzer's driver.
@_cdecl("CodecFuzz_main")
func codecFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.libFuzzer(argc, argv) { CodecFuzz.run($0) }
}
#else
@main
struct CodecFuzzMain {
    static func main() throws {
        try FuzzDriver.main("CodecFuzz") { CodecFuzz.run($0) }
    }
}
#endif
