internal import CNGHTTP2

// nghttp2's callbacks for client sessions: file-level C functions that recover the
// connection from `user_data`, never throw, and return 0 or an nghttp2 error code. They run
// inside `nghttp2_session_mem_recv` / `mem_send`, on the connection's event loop.

private func connection(_ userData: UnsafeMutableRawPointer?) -> ClientConnection {
    Unmanaged<ClientConnection>.fromOpaque(userData!).takeUnretainedValue()
}

func clientOnBeginHeaders(
    session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    connection(userData).responseHead = ResponseHead()
    return 0
}

func clientOnHeader(
    session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, name: UnsafePointer<UInt8>?, nameLength: Int,
    value: UnsafePointer<UInt8>?, valueLength: Int, flags: UInt8, userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    let owner = connection(userData)
    guard owner.call(frame.pointee.hd.stream_id) != nil else { return 0 }
    owner.responseHead.add(
        name: UnsafeBufferPointer(start: name, count: nameLength), value: UnsafeBufferPointer(start: value, count: valueLength))
    return 0
}

func clientOnFrameRecv(session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame else { return 0 }
    let owner = connection(userData)
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue:
        if let call = owner.call(header.stream_id) {
            call.headerBlockComplete(owner.takeResponseHead(), endStream: endStream)
        }
    case NGHTTP2_DATA.rawValue:
        if endStream { owner.call(header.stream_id)?.dataEndedStream() }
    case NGHTTP2_SETTINGS.rawValue:
        if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { owner.settingsReceived() }
    case NGHTTP2_GOAWAY.rawValue:
        let goaway = frame.pointee.goaway
        let debug =
            goaway.opaque_data_len > 0 && goaway.opaque_data != nil
            ? String(decoding: UnsafeBufferPointer(start: goaway.opaque_data, count: goaway.opaque_data_len), as: UTF8.self)
            : ""
        owner.goAwayReceived(lastStreamID: goaway.last_stream_id, errorCode: goaway.error_code, debug: debug)
    default:
        break
    }
    return 0
}

func clientOnDataChunkRecv(
    session: OpaquePointer?, flags: UInt8, streamID: Int32, data: UnsafePointer<UInt8>?, length: Int,
    userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let call = connection(userData).call(streamID) else {
        // A stream nobody reads any more: return its credit at once.
        nghttp2_session_consume(session, streamID, length)
        return 0
    }
    call.receiveData(UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

func clientOnStreamClose(session: OpaquePointer?, streamID: Int32, errorCode: UInt32, userData: UnsafeMutableRawPointer?) -> Int32 {
    connection(userData).streamClosed(id: streamID, errorCode: errorCode)
    return 0
}

/// A request's HEADERS frame was serialized for the socket (the write follows in the same
/// flush): the moment the call really went out, for load tools timing "from the send".
func clientOnFrameSend(session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    connection(userData).call(frame.pointee.hd.stream_id)?.requestHeadersSent()
    return 0
}

func clientOnFrameNotSend(
    session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, libraryError: Int32, userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
    else { return 0 }
    connection(userData).requestNotSent(id: frame.pointee.hd.stream_id, libraryError: libraryError)
    return 0
}

/// nghttp2's pull callback for request DATA; the call is the stream's user data.
func clientReadRequestData(
    session: OpaquePointer?, streamID: Int32, buffer: UnsafeMutablePointer<UInt8>?, length: Int,
    flags: UnsafeMutablePointer<UInt32>?, source: UnsafeMutablePointer<nghttp2_data_source>?,
    userData: UnsafeMutableRawPointer?
) -> Int {
    guard let raw = nghttp2_session_get_stream_user_data(session, streamID), let buffer, let flags else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    let call = Unmanaged<ClientCall>.fromOpaque(raw).takeUnretainedValue()
    return call.readRequest(into: buffer, length: length, flags: flags)
}
