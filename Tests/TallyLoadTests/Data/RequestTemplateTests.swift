import Codec
import Foundation
import LoadKit
import Testing

@Suite("Request templates")
struct RequestTemplateTests {
    let catalog = RPCCatalog.standard

    private func encode(_ json: String, _ message: String, batch: Int = 3) throws -> [UInt8] {
        let template = try RequestTemplate(text: json, message: message, schema: catalog.schema)
        var context = GeneratorContext(seed: 42, users: 5, batchSize: batch)
        context.sequence = 17
        return try template.encode(&context)
    }

    @Test("a constant template is encoded once and decodes as the message")
    func constant() throws {
        let template = try RequestTemplate(
            text: #"{"payload": "aGk=", "repeat": 3}"#, message: "bench.v1.EchoRequest", schema: catalog.schema)
        let bytes = try #require(template.constantBytes)
        let request = try Bench_V1_EchoRequest(protobuf: bytes)
        #expect(request.payload == Array("hi".utf8))
        #expect(request.repeat == 3)
    }

    @Test("generators, repeat, maps, nested messages and JSON names")
    func generators() throws {
        let bytes = try encode(
            #"""
            {"events": ["{{repeat}}", {"id": "e-{{seq}}", "type": "{{eventType}}", "userId": "{{randomUser}}",
              "score": "{{randomInt 10 20}}", "client_time_ms": {{now}}, "level": 7, "attributes": {"k": "v-{{seq}}"}}]}
            """#, "tally.v1.TrackRequest")
        let request = try Tally_V1_TrackRequest(protobuf: bytes)
        #expect(request.events.count == 3)
        for event in request.events {
            #expect(event.id == "e-17")
            #expect(["app_launched", "game_started", "game_ended", "level_completed", "purchase"].contains(event.type))
            #expect(["user-1", "user-2", "user-3", "user-4", "user-5"].contains(event.userId))
            #expect((10...20).contains(event.score))
            #expect(event.clientTimeMs > 1_600_000_000_000)
            #expect(event.level == 7)
            #expect(event.attributes == ["k": "v-17"])
        }
    }

    @Test("{{uuid}} gives distinct version-4 UUIDs in canonical lowercase text")
    func uuids() throws {
        let bytes = try encode(#"{"events": ["{{repeat}}", {"id": "{{uuid}}"}]}"#, "tally.v1.TrackRequest", batch: 200)
        let ids = try Tally_V1_TrackRequest(protobuf: bytes).events.map(\.id)
        #expect(Set(ids).count == 200)
        for id in ids {
            #expect(UUID(uuidString: id)?.uuidString.lowercased() == id)
            let characters = Array(id)
            #expect(characters.count == 36 && characters[14] == "4" && "89ab".contains(characters[19]), "\(id)")
        }
    }

    @Test("{{phone}} and {{phone P}}: E.164 numbers that never end like the sandbox's special cases", arguments: [
        ("{{phone}}", "+1555", 12), ("{{phone +49151}}", "+49151", 14),
    ])
    func phones(_ function: String, _ prefix: String, _ length: Int) throws {
        let bytes = try encode(#"{"events": ["{{repeat}}", {"id": "\#(function)"}]}"#, "tally.v1.TrackRequest", batch: 20_000)
        let numbers = try Tally_V1_TrackRequest(protobuf: bytes).events.map(\.id)
        for number in numbers {
            #expect(number.hasPrefix(prefix) && number.count == length && number.dropFirst().allSatisfy(\.isNumber), "\(number)")
            #expect(!["0000", "0001", "0002", "0003"].contains(String(number.suffix(4))), "\(number)")
        }
        #expect(Set(numbers).count > 19_000)
    }

    @Test("{{itemDiv M}} and {{itemMod M}}: N users x M questions per batch, each pair once")
    func items() throws {
        let bytes = try encode(
            #"{"quiz_id": "q", "answers": ["{{repeat}}", {"user_id": "user-{{itemDiv 4}}", "question_id": "q-{{itemMod 4}}"}]}"#,
            "tally.v1.SubmitAnswersRequest", batch: 12)
        let pairs = try Tally_V1_SubmitAnswersRequest(protobuf: bytes).answers.map { "\($0.userId)/\($0.questionId)" }
        #expect(pairs == (0..<3).flatMap { user in (0..<4).map { "user-\(user)/q-\($0)" } })
    }

    @Test("{{runId}} is one id for the whole run, 16 hex digits")
    func runID() throws {
        let bytes = try encode(#"{"events": ["{{repeat}}", {"id": "load-{{runId}}-{{seq}}"}]}"#, "tally.v1.TrackRequest", batch: 50)
        let ids = Set(try Tally_V1_TrackRequest(protobuf: bytes).events.map(\.id))
        let id = try #require(ids.first)
        #expect(ids.count == 1)
        let run = id.split(separator: "-")[1]
        #expect(run.count == 16 && run.allSatisfy(\.isHexDigit))
        #expect(id.hasSuffix("-17"))
    }

    @Test("enums by name, oneof members, bytes, packed-able repeated scalars, uint64 text")
    func fieldShapes() throws {
        let presence = try Tally_V1_PresenceClientMessage(
            protobuf: try encode(#"{"status": {"status": "PRESENCE_STATUS_BUSY", "activity": "match"}}"#, "tally.v1.PresenceClientMessage"))
        #expect(presence.kind == .status({ var s = Tally_V1_StatusUpdate(); s.status = .busy; s.activity = "match"; return s }()))
        let batch = try Tally_V1_EventBatch(protobuf: try encode(#"{"sequence": "18446744073709551615"}"#, "tally.v1.EventBatch"))
        #expect(batch.sequence == UInt64.max)
        let answers = try encode(#"{"answers": [{"correct": true, "points": -5}]}"#, "tally.v1.SubmitAnswersRequest")
        let decoded = try Tally_V1_SubmitAnswersRequest(protobuf: answers)
        #expect(decoded.answers.first?.correct == true && decoded.answers.first?.points == -5)
    }

    @Test("mistakes name the field", arguments: [
        (#"{"nope": 1}"#, "tally.v1.TrackRequest has no field \"nope\""),
        (#"{"events": [{"level": "high"}]}"#, "field level: expected an integer"),
        (#"{"events": [{"level": 3000000000}]}"#, "field level: expected an integer"),
        (#"{"events": {"id": "x"}}"#, "events: repeated field needs a JSON array"),
        (#"{"events": [{"id": "{{bogus}}"}]}"#, "unknown template function \"bogus\""),
        (#"{"events": [{"id": "{{randomInt 5 1}}"}]}"#, "the range is empty"),
        (#"{"events": [{"id": "{{phone 49151}}"}]}"#, "phone takes one prefix"),
        (#"{"events": [{"id": "{{runId x}}"}]}"#, "runId takes no arguments"),
    ])
    func errors(_ json: String, _ expected: String) {
        do {
            _ = try encode(json, "tally.v1.TrackRequest")
            Issue.record("encoded \(json)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test("an enum name that does not exist lists the values")
    func badEnum() {
        do {
            _ = try encode(#"{"status": "DONE"}"#, "tally.v1.ListTopupsRequest")
            Issue.record("encoded")
        } catch {
            #expect("\(error)".contains("TOPUP_STATUS_SUCCEEDED"))
        }
    }

    @Test("every RPC's built-in data encodes and decodes as its request type", arguments: RPCCatalog.standard.rpcs.map(\.name))
    func builtIn(_ name: String) throws {
        let rpc = try catalog.rpc(named: name)
        let data = try RequestData.builtIn(for: rpc, schema: catalog.schema)
        let type = try #require(ProtoDescriptors.messageTypes[rpc.input])
        var context = GeneratorContext(seed: 7, users: 100, batchSize: 4)
        for index in 1...(data.templates.count + 1) {
            context.messageIndex = index
            let bytes = try data.encode(&context)
            _ = try type.init(protobuf: bytes)
        }
    }

    @Test("stream templates: message k uses element k, the last repeats")
    func streamMessages() throws {
        let rpc = try catalog.rpc(named: "tally.v1.PresenceService/Connect")
        let data = try RequestData.builtIn(for: rpc, schema: catalog.schema)
        var context = GeneratorContext(seed: 1, users: 10, batchSize: 1)
        var kinds: [String] = []
        for index in 1...6 {
            context.messageIndex = index
            let message = try Tally_V1_PresenceClientMessage(protobuf: try data.encode(&context))
            switch message.kind {
            case .hello: kinds.append("hello")
            case .subscribe: kinds.append("subscribe")
            case .status: kinds.append("status")
            case .heartbeat: kinds.append("heartbeat")
            case nil: kinds.append("none")
            }
        }
        #expect(kinds == ["hello", "subscribe", "status", "heartbeat", "heartbeat", "heartbeat"])
    }

    @Test("a unary RPC refuses an array of messages")
    func arrayForUnary() throws {
        let rpc = try catalog.rpc(named: "bench.v1.Echo/Echo")
        #expect(throws: LoadError.self) { try RequestData(text: "[{}]", rpc: rpc, schema: catalog.schema) }
    }
}
