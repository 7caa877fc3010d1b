import Codec
import GRPCClient
import NIOCore

/// The three streaming call shapes, each made with the run's metadata and deadline.
extension Worker {
    /// Client streams send `--stream-messages` messages (default 10), `--stream-interval`
    /// apart, then half-close; server streams send one. Responses are read as they come (in
    /// parallel with sending for bidi); a server stream ends after `--stream-messages`
    /// responses when that is set. A timed run ends streams still open at its end.
    func stream(_ workload: Workload, context: inout GeneratorContext) async -> CallOutcome {
        let kind = workload.rpc.kind
        let call: ClientCall
        do {
            call = try connection.makeCall(workload.rpc.path, metadata: configuration.metadata, timeout: configuration.timeout)
        } catch let error as CallError {
            return CallOutcome(status: error.code.name, message: error.status.message)
        } catch {
            return CallOutcome(status: StatusCode.unknown.name, message: "\(error)")
        }
        let endedByUs = ClientEndFlag()
        let responseLimit = kind == .serverStreaming ? configuration.streamMessages : nil
        let endOfRun: Scheduled<Void>? = control.end.map { end in
            connection.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(end)) {
                endedByUs.set()
                call.cancel()
            }
        }
        defer { endOfRun?.cancel() }

        let toSend = kind.sendsStream ? (configuration.streamMessages ?? LoadConfiguration.defaultStreamMessages) : 1
        let received: (messages: Int, bytes: Int)
        var sent = (messages: 0, bytes: 0)
        var templateError: LoadError?
        if kind == .bidirectionalStreaming {
            async let reading = Self.readResponses(call, limit: nil, endedByUs: endedByUs)
            (sent, templateError) = await send(toSend, workload: workload, call: call, context: &context)
            received = await reading
        } else {
            (sent, templateError) = await send(toSend, workload: workload, call: call, context: &context)
            received = await Self.readResponses(call, limit: responseLimit, endedByUs: endedByUs)
        }
        if let templateError { return Self.templateFailure(templateError) }
        let status = await call.status()
        let name = endedByUs.isSet && status.code == .cancelled ? RPCStatistics.endedByClient : status.code.name
        return CallOutcome(
            status: name, message: status.message, messagesSent: sent.messages, messagesReceived: received.messages,
            bytesSent: sent.bytes, bytesReceived: received.bytes)
    }

    private func send(
        _ count: Int, workload: Workload, call: ClientCall, context: inout GeneratorContext
    ) async -> ((messages: Int, bytes: Int), LoadError?) {
        var sent = (messages: 0, bytes: 0)
        for message in 1...max(1, count) {
            context.messageIndex = message
            let bytes: [UInt8]
            do {
                bytes = try workload.data.encode(&context)
            } catch {
                call.cancel()
                return (sent, error)
            }
            do {
                try await call.sendRaw(bytes)
            } catch {
                return (sent, nil)  // the call has ended; its status tells why
            }
            sent.messages += 1
            sent.bytes += bytes.count + 5
            if let interval = configuration.streamInterval, message < count {
                await sleep(until: Monotonic.now() + Monotonic.nanoseconds(interval))
            }
        }
        try? await call.finishSending()
        return (sent, nil)
    }

    private static func readResponses(_ call: ClientCall, limit: Int?, endedByUs: ClientEndFlag) async -> (messages: Int, bytes: Int) {
        var messages = 0
        var bytes = 0
        do {
            for try await response in call.messages(ResponseSize.self) {
                messages += 1
                bytes += response.count + 5
                if let limit, messages >= limit {
                    endedByUs.set()
                    call.cancel()
                    break
                }
            }
        } catch {
            // The status says why the responses ended.
        }
        return (messages, bytes)
    }

    static func templateFailure(_ error: LoadError) -> CallOutcome {
        CallOutcome(status: "CLIENT_TEMPLATE_ERROR", message: error.description)
    }
}
