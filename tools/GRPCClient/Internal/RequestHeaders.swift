internal import CNGHTTP2

/// Request header fields laid out for nghttp2: one byte buffer and the field offsets, turned
/// into an `nghttp2_nv` array only for the duration of `withNameValues` (nghttp2 copies the
/// fields when the request is submitted). Reused per connection, so building costs no
/// allocation once the buffers have grown.
struct RequestHeaders {
    private var bytes: [UInt8] = []
    private var fields: [(nameStart: Int, nameLength: Int, valueStart: Int, valueLength: Int)] = []
    private var nameValues: [nghttp2_nv] = []

    init() {
        bytes.reserveCapacity(512)
        fields.reserveCapacity(16)
        nameValues.reserveCapacity(16)
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
    }

    mutating func add(_ name: String, _ value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    /// Appends pre-encoded fields (see `encodedFields`).
    mutating func add(encoded other: RequestHeaders) {
        let offset = bytes.count
        bytes.append(contentsOf: other.bytes)
        for field in other.fields {
            fields.append((field.nameStart + offset, field.nameLength, field.valueStart + offset, field.valueLength))
        }
    }

    mutating func withNameValues<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        nameValues.removeAll(keepingCapacity: true)
        let fields = self.fields
        var nvs = self.nameValues
        defer { self.nameValues = nvs }
        return bytes.withUnsafeBufferPointer { raw in
            // nghttp2_nv wants mutable pointers but never writes through them.
            let base = UnsafeMutablePointer(mutating: raw.baseAddress ?? UnsafePointer(bitPattern: 1)!)
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
