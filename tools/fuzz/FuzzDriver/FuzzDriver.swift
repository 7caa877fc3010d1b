import Foundation

/// The entry point every fuzz target shares (CodecFuzz, ValidatorFuzz).
///
/// Built with `-sanitize=fuzzer -DFUZZING` (tools/fuzz/run.sh) a target hands its inputs to
/// libFuzzer's driver: coverage-guided, with AddressSanitizer when asked. Built normally (the
/// debug build every test run makes) the same target replays files, or mutates seed inputs at
/// random for a bounded time (`--mutate SECONDS`): no coverage guidance, but Swift's own
/// checks (bounds, overflow, exclusivity) and each target's assertions, at no build cost.
public enum FuzzDriver {
    /// The target's body: one input, checked by its own assertions (a failure traps).
    public typealias Target = (UnsafeRawBufferPointer) -> Void

    nonisolated(unsafe) private static var target: Target?

    #if FUZZING
    /// Runs libFuzzer's driver over `target` with the process's arguments.
    public static func libFuzzer(
        _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, target: @escaping Target
    ) -> CInt {
        Self.target = target
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
            guard let data else { return 0 }
            FuzzDriver.target?(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
    }
    #endif

    /// `NAME FILE...` replays each file (a directory: each file in it);
    /// `NAME --mutate SECONDS [--seed N] SEEDS...` runs mutated seed inputs until the time is up.
    public static func main(_ name: String, target: Target) throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.first == "--mutate" else {
            for path in try inputs(arguments) {
                try Data(contentsOf: path).withUnsafeBytes(target)
                print("replayed \(path.path): no crash")
            }
            return
        }
        arguments.removeFirst()
        guard let seconds = arguments.first.flatMap(Double.init) else { throw UsageError(name: name) }
        arguments.removeFirst()
        var seed = UInt64.random(in: 1...UInt64.max)
        if arguments.first == "--seed", arguments.count > 1, let given = UInt64(arguments[1]) {
            seed = given
            arguments.removeFirst(2)
        }
        let seeds = try inputs(arguments).map { [UInt8](try Data(contentsOf: $0)) }
        guard !seeds.isEmpty else { throw UsageError(name: name) }
        // The seed is printed first: a crash is reproduced by running the same seed again.
        print("\(name): mutating \(seeds.count) seed inputs for \(seconds) s, --seed \(seed)")
        fflush(nil)  // every stream: shown even when a crash ends the process with the line still buffered
        var mutator = Mutator(seed: seed)
        let end = Date().addingTimeInterval(seconds)
        var runs = 0
        while Date() < end {
            for _ in 0..<64 {
                let input = mutator.mutate(seeds)
                input.withUnsafeBytes(target)
                runs += 1
            }
        }
        print("\(name): \(runs) inputs in \(seconds) s without a crash")
    }

    private static func inputs(_ paths: [String]) throws -> [URL] {
        try paths.flatMap { path -> [URL] in
            let url = URL(fileURLWithPath: path)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [url] }
            return try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)
                .sorted { $0.path < $1.path }
        }
    }

    struct UsageError: Error, CustomStringConvertible {
        let name: String
        var description: String { "usage: \(name) FILE... | \(name) --mutate SECONDS [--seed N] SEED_FILE_OR_DIR..." }
    }
}

#if FUZZING
/// libFuzzer's driver, exported by its runtime (-sanitize=fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif
