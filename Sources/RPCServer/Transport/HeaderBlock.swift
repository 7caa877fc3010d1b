internal import CNGHTTP2

/// A list of HTTP/2 header fields laid out for nghttp2: one byte buffer and an `nghttp2_nv`
/// array pointing into it, valid for the duration of a `withNameValues` call (nghttp2 copies
/// them when a frame is submitted).
struct HeaderBlock {
    private var bytes: [UInt8] = []
    private var fields: [(nameStart: Int, nameLength: Int, valueStart: Int, valueLength: Int)] = []
    /// A process-lifetime copy for the blocks every call sends (see `frozen()`).
    private var permanent: PermanentNameValues?

    init() {
        bytes.reserveCapacity(128)
    }

    init(_ pairs: [(String, String)]) {
        self.init()
        for (name, value) in pairs { add(name, value) }
    }

    mutating func add(_ name: String, _ value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    var isEmpty: Bool { fields.isEmpty }

    /// This block laid out once in memory that is never freed, so sending it costs no
    /// allocation; for the few constant blocks of the hot path only.
    func frozen() -> HeaderBlock {
        var copy = self
        copy.permanent = PermanentNameValues(self)
        return copy
    }

    func withNameValues<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        if let permanent { return body(permanent.nameValues, permanent.count) }
        return bytes.withUnsafeBufferPointer { raw in
            // nghttp2_nv wants mutable pointers but never writes through them.
            let base = UnsafeMutablePointer(mutating: raw.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var nvs: [nghttp2_nv] = []
            nvs.reserveCapacity(fields.count)
            for field in fields {
                nvs.append(
                    nghttp2_nv(
                        name: base + field.nameStart, value: base + field.valueStart,
                        namelen: field.nameLength, valuelen: field.valueLength,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            return nvs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}

/// Constant header fields in process-lifetime memory.
private final class PermanentNameValues: @unchecked Sendable {  // immutable after init
    let nameValues: UnsafeMutablePointer<nghttp2_nv>
    let count: Int

    init(_ block: HeaderBlock) {
        var copied: [nghttp2_nv] = []
        block.withNameValues { nva, count in
            for index in 0..<count {
                let field = nva[index]
                let name = UnsafeMutablePointer<UInt8>.allocate(capacity: field.namelen)
                name.initialize(from: field.name, count: field.namelen)
                let value = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, field.valuelen))
                value.initialize(from: field.value, count: field.valuelen)
                copied.append(
                    nghttp2_nv(
                        name: name, value: value, namelen: field.namelen, valuelen: field.valuelen,
                        flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)))
            }
        }
        count = copied.count
        nameValues = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: max(1, count))
        nameValues.initialize(from: copied, count: count)
    }
}
