import AsyncHTTPClient
import NIOCore

extension HTTPClientResponse.Body {
    /// The whole body, or nil when it is over `maxBytes`, breaks off, or is still arriving at
    /// `deadline`: AsyncHTTPClient's timeout ends with the response head, so a server
    /// trickling its body would otherwise hold the call open (provider and webhook calls).
    func collect(upTo maxBytes: Int, until deadline: ContinuousClock.Instant) async -> ByteBuffer? {
        await withTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try? await self.collect(upTo: maxBytes) }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            // Cancelling the unfinished collect closes the connection under it.
            group.cancelAll()
            return first
        }
    }
}
