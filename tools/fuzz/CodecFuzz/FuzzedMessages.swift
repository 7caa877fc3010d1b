import Codec
import NIOCore

/// Decodes one payload as every request type a client can send (and re-encodes what
/// decodes), so the fuzzer reaches protobuf-c's unpack and the Swift bridge for each shape:
/// scalars, strings, bytes, maps, oneofs, nested and repeated messages.
enum FuzzedMessages {
    static func decodeAll(_ payload: ByteBuffer) {
        roundTrip(Bench_V1_EchoRequest.self, payload)
        roundTrip(Tally_V1_TrackRequest.self, payload)
        roundTrip(Tally_V1_EventBatch.self, payload)
        roundTrip(Tally_V1_SubmitAnswersRequest.self, payload)
        roundTrip(Tally_V1_PresenceClientMessage.self, payload)
        roundTrip(Tally_V1_TopupRequest.self, payload)
        roundTrip(Grpc_Reflection_V1_ServerReflectionRequest.self, payload)
        roundTrip(Tally_V1_CreateTournamentRequest.self, payload)
        roundTrip(Grpc_Testing_SimpleRequest.self, payload)
        roundTrip(Grpc_Testing_StreamingOutputCallRequest.self, payload)
    }

    private static func roundTrip<M: ProtobufMessage>(_: M.Type, _ payload: ByteBuffer) {
        guard let message = try? M(protobuf: payload) else { return }
        var buffer = ByteBuffer()
        message.encode(into: &buffer)
        // What we encode must decode to the same value.
        guard let again = try? M(protobuf: buffer), again == message else {
            fatalError("\(M.protoName) did not survive a re-encode")
        }
    }
}
