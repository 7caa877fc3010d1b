/// Statement parameters in text form, NUL-terminated back to back in one buffer, so the
/// blocking thread builds libpq's `const char *const *paramValues` without allocating per value.
struct EncodedParameters: Sendable {
    private(set) var bytes: [UInt8] = []
    /// Start of each value in `bytes`; -1 for NULL.
    private(set) var offsets: [Int] = []

    init() {}

    init(_ parameters: [any PostgresEncodable]) {
        offsets.reserveCapacity(parameters.count)
        for parameter in parameters { append(parameter) }
    }

    var count: Int { offsets.count }

    mutating func append(_ value: some PostgresEncodable) {
        if value.isPostgresNull {
            offsets.append(-1)
        } else {
            offsets.append(bytes.count)
            value.appendPostgresText(to: &bytes)
            bytes.append(0)
        }
    }

    /// Calls `body` with the count and the value pointers, valid only inside `body`.
    func withCValues<R>(_ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        if offsets.isEmpty { return body(0, nil) }
        return bytes.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                offset < 0 ? nil : base!.advanced(by: offset).assumingMemoryBound(to: CChar.self)
            }
            return pointers.withUnsafeBufferPointer { body(Int32(offsets.count), $0.baseAddress) }
        }
    }
}
