internal import CNGHTTP2

// nghttp2's callbacks: file-level C functions that recover the connection from `user_data`,
// never throw, and return 0 or an nghttp2 error code. They run inside
// `nghttp2_session_mem_recv`, on the connection's event loop.

private func connection(_ userData: UnsafeMutableRawPointer?) -> ServerConnection {
    Unmanaged<ServerConnection>.fromOpaque(userData!).takeUnretainedValue()
}

func onBeginHeaders(
    session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
    else { return 0 }
    connection(userData).beginStream(id: frame.pointee.hd.stream_id)
    return 0
}

func onHeader(
    session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, name: UnsafePointer<UInt8>?, nameLength: Int,
    value: UnsafePointer<UInt8>?, valueLength: Int, flags: UInt8, userData: UnsafeMutableRawPointer?
) -> Int32 {
    let owner = connection(userData)
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST,
        let stream = owner.stream(frame.pointee.hd.stream_id)
    else { return 0 }  // trailers from the client carry nothing gRPC uses
    stream.request.add(
        name: UnsafeBufferPointer(start: name, count: nameLength),
        value: UnsafeBufferPointer(start: value, count: valueLength),
        limit: owner.configuration.maxHeaderListSize, paths: &owner.paths)
    return 0
}

func onFrameRecv(session: OpaquePointer?, frame: UnsafePointer<nghttp2_frame>?, userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let frame else { return 0 }
    let owner = connection(userData)
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue:
        guard let stream = owner.stream(header.stream_id) else { return 0 }
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            owner.requestHeadersComplete(stream, endStream: endStream)
        } else if endStream {
            stream.endOfInput()
            owner.startIfReady(stream)
        }
    case NGHTTP2_DATA.rawValue:
        guard endStream, let stream = owner.stream(header.stream_id) else { return 0 }
        stream.endOfInput()
        owner.startIfReady(stream)
    case NGHTTP2_PING.rawValue:
        let data = withUnsafeBytes(of: frame.pointee.ping.opaque_data) { Array($0) }
        owner.pingReceived(ack: header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0, data: data)
    default:
        break
    }
    return 0
}

func onDataChunkRecv(
    session: OpaquePointer?, flags: UInt8, streamID: Int32, data: UnsafePointer<UInt8>?, length: Int,
    userData: UnsafeMutableRawPointer?
) -> Int32 {
    let owner = connection(userData)
    guard let stream = owner.stream(streamID) else {
        // A stream we do not track (already answered and forgotten): still return the credit.
        nghttp2_session_consume(session, streamID, length)
        return 0
    }
    stream.receiveData(UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

func onStreamClose(session: OpaquePointer?, streamID: Int32, errorCode: UInt32, userData: UnsafeMutableRawPointer?) -> Int32 {
    connection(userData).streamClosed(id: streamID, errorCode: errorCode)
    return 0
}
