internal import CNGHTTP2

/// Creates nghttp2 client sessions wired to the callbacks below; callbacks and options are
/// built once and shared (nghttp2 copies them into each session).
enum ClientSession {
    private struct Shared: @unchecked Sendable {  // immutable after creation
        let callbacks: OpaquePointer
        let options: OpaquePointer
    }

    private static let shared: Shared = {
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2_session_callbacks_new failed")
        nghttp2_session_callbacks_set_on_header_callback(callbacks, clientOnHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, clientOnFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, clientOnDataChunkRecv)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, clientOnStreamClose)
        var options: OpaquePointer?
        precondition(nghttp2_option_new(&options) == 0, "nghttp2_option_new failed")
        // Credit returns as the caller reads messages, so a slow reader slows the server.
        nghttp2_option_set_no_auto_window_update(options, 1)
        return Shared(callbacks: callbacks!, options: options!)
    }()

    static func make(userData: UnsafeMutableRawPointer) -> OpaquePointer {
        var session: OpaquePointer?
        let result = nghttp2_session_client_new2(&session, shared.callbacks, userData, shared.options)
        precondition(result == 0 && session != nil, "nghttp2_session_client_new2 failed: \(result)")
        return session!
    }
}

// nghttp2's callbacks, run inside nghttp2_session_mem_recv/mem_send on the event loop. They
// recover the handler from user_data, never throw, and return 0 or an nghttp2 error code.

private func handler(_ userData: UnsafeMutableRawPointer?) -> ClientConnectionHandler {
    Unmanaged<ClientConnectionHandler>.fromOpaque(userData!).takeUnretainedValue()
}

func clientOnHeader(
    session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, name: UnsafePointer<UInt8>?, nameLength: Int,
    value: UnsafePointer<UInt8>?, valueLength: Int, flags: UInt8, userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        let call = handler(userData).call(frame.pointee.hd.stream_id)
    else { return 0 }
    let trailers = frame.pointee.headers.cat == NGHTTP2_HCAT_HEADERS
    call.header(
        name: UnsafeBufferPointer(start: name, count: nameLength),
        value: UnsafeBufferPointer(start: value, count: valueLength), trailers: trailers)
    return 0
}

func clientOnFrameRecv(session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame else { return 0 }
    let owner = handler(userData)
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue:
        guard let call = owner.call(header.stream_id) else { return 0 }
        if frame.pointee.headers.cat == NGHTTP2_HCAT_RESPONSE {
            call.headersComplete(endStream: endStream)
        } else if endStream {
            call.trailersComplete()
        }
    case NGHTTP2_GOAWAY.rawValue:
        owner.goAwayReceived(lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code)
    default:
        break
    }
    return 0
}

func clientOnDataChunkRecv(
    session: OpaquePointer?, flags: UInt8, streamID: Int32, data: UnsafePointer<UInt8>?, length: Int,
    userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let call = handler(userData).call(streamID) else {
        nghttp2_session_consume(session, streamID, length)
        return 0
    }
    call.receiveData(UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

func clientOnStreamClose(session: OpaquePointer?, streamID: Int32, errorCode: UInt32, userData: UnsafeMutableRawPointer?) -> Int32 {
    handler(userData).streamClosed(id: streamID, errorCode: errorCode)
    return 0
}

/// nghttp2 pulls request bytes; the call hands out what it has queued.
func clientCallDataRead(
    session: OpaquePointer?, streamID: Int32, buffer: UnsafeMutablePointer<UInt8>?, length: Int,
    flags: UnsafeMutablePointer<UInt32>?, source: UnsafeMutablePointer<nghttp2_data_source>?,
    userData: UnsafeMutableRawPointer?
) -> Int {
    guard let raw = nghttp2_session_get_stream_user_data(session, streamID), let buffer, let flags else {
        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    let call = Unmanaged<ClientCall>.fromOpaque(raw).takeUnretainedValue()
    return call.readRequest(into: buffer, length: length, flags: flags)
}

/// Request header fields laid out for nghttp2 (it copies them when the request is submitted).
struct ClientHeaderBlock {
    private var bytes: [UInt8] = []
    private var fields: [(name: Range<Int>, value: Range<Int>)] = []

    init() {
        bytes.reserveCapacity(256)
    }

    mutating func add(_ name: String, _ value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append((nameStart..<valueStart, valueStart..<bytes.count))
    }

    func withNameValues<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        bytes.withUnsafeBufferPointer { raw in
            // nghttp2_nv wants mutable pointers but never writes through them.
            let base = UnsafeMutablePointer(mutating: raw.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            let nvs = fields.map { field in
                nghttp2_nv(
                    name: base + field.name.lowerBound, value: base + field.value.lowerBound,
                    namelen: field.name.count, valuelen: field.value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nvs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
