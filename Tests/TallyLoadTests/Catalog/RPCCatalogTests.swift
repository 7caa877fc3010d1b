import Codec
import LoadKit
import Testing

@Suite("RPC catalog")
struct RPCCatalogTests {
    @Test("every service in proto/ has protobuf-c descriptors")
    func coversEveryService() {
        #expect(RPCCatalog.standard.servicesWithoutDescriptors.isEmpty)
        let methods = ProtoDescriptors.services.reduce(0) { $0 + $1.methods.count }
        #expect(RPCCatalog.standard.rpcs.count == methods)
    }

    @Test("an RPC is found by its full name in every spelling", arguments: [
        "tally.v1.EventService/Track", "/tally.v1.EventService/Track", "tally.v1.EventService.Track",
    ])
    func findsByName(_ name: String) throws {
        let rpc = try RPCCatalog.standard.rpc(named: name)
        #expect(rpc.path == "/tally.v1.EventService/Track")
        #expect(rpc.kind == .unary)
        #expect(rpc.input == "tally.v1.TrackRequest")
    }

    @Test("call shapes come from the proto", arguments: [
        ("bench.v1.Echo/Echo", RPCKind.unary), ("bench.v1.Echo/Collect", .clientStreaming),
        ("grpc.health.v1.Health/Watch", .serverStreaming), ("tally.v1.PresenceService/Connect", .bidirectionalStreaming),
    ])
    func kinds(_ name: String, _ kind: RPCKind) throws {
        #expect(try RPCCatalog.standard.rpc(named: name).kind == kind)
    }

    @Test("an unknown RPC is a usage error that suggests the right service")
    func unknownRPC() {
        #expect(throws: LoadError.usage("unknown RPC \"tally.v1.Nope/Track\"; did you mean tally.v1.EventService/Track?")) {
            try RPCCatalog.standard.rpc(named: "tally.v1.Nope/Track")
        }
    }

    @Test("schemas carry field numbers, types, maps and enums")
    func schema() throws {
        let schema = RPCCatalog.standard.schema
        let event = try #require(schema.message("tally.v1.Event"))
        let userID = try #require(event.field(named: "userId"))
        #expect(userID.name == "user_id" && userID.number == 3 && userID.kind == .string)
        #expect(try #require(event.field(named: "attributes")).isMap)
        #expect(try #require(event.field(named: "score")).kind == .int64)
        let status = try #require(schema.enumeration("tally.v1.PresenceStatus"))
        #expect(status.values["PRESENCE_STATUS_BUSY"] == 3)
    }
}
