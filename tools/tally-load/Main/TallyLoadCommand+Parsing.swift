import ArgumentParser
import LoadKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Flag values that need more than ArgumentParser's types, and reading files.
extension TallyLoadCommand {
    static func duration(_ text: String, flag: String, positive: Bool = false) throws -> Duration {
        guard let value = DurationText.parse(text) else {
            throw ValidationError("\(flag): \"\(text)\" is not a duration (e.g. 500ms, 10s, 2m)")
        }
        if positive && value <= .zero { throw ValidationError("\(flag) must be more than 0") }
        return value
    }

    static func target(_ text: String) throws -> (String, Int) {
        var host = text
        var portText = ""
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            portText = rest.hasPrefix(":") ? String(rest.dropFirst()) : ""
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else {
            throw ValidationError("--target: \"\(text)\" is not host:port (e.g. 127.0.0.1:50051)")
        }
        return (host, port)
    }

    static func header(_ text: String) throws -> (String, String) {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
            throw ValidationError("-H: \"\(text)\" is not key:value")
        }
        let key = text[..<colon].lowercased()
        var value = text[text.index(after: colon)...]
        while value.first == " " { value = value.dropFirst() }
        guard key.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ValidationError("-H: \"\(key)\" is not a valid metadata key")
        }
        return (key, String(value))
    }

    static func read(_ path: String, flag: String) throws(LoadError) -> String {
        guard let file = fopen(path, "rb") else { throw LoadError.usage("\(flag): cannot read \(path)") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func labelled<T>(_ label: String, _ body: () throws(LoadError) -> T) throws(LoadError) -> T {
        do {
            return try body()
        } catch {
            throw LoadError.usage("\(label): \(error.description)")
        }
    }

    @Sendable static func printProgress(_ progress: LoadRunner.Progress) {
        let phase = progress.inWarmup ? "warm-up" : "running"
        let line = "\r[\(Int(progress.elapsed))s] \(phase): \(progress.completed) calls, \(progress.failed) errors   "
        writeStandardError(line)
    }

    static func clearProgress() {
        writeStandardError("\r\u{1B}[K")
    }

    static func printError(_ text: String) {
        writeStandardError(text + "\n")
    }

    static func writeStandardError(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}
