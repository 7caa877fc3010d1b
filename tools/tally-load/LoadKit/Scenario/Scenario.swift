/// A weighted mix of RPCs run together, from a JSON file:
///
/// ```json
/// {"rpcs": [
///   {"rpc": "tally.v1.EventService/Track", "weight": 70},
///   {"rpc": "tally.v1.LeaderboardService/Rank", "weight": 20, "data": {"board_id": "global", "user_id": "{{randomUser}}"}},
///   {"rpc": "tally.v1.LeaderboardService/Top", "weight": 10, "data_file": "top.json"}
/// ]}
/// ```
///
/// Each entry's data is a template as `-d` takes it (`data`), a file of one (`data_file`,
/// relative to the scenario file), or the RPC's built-in data.
public struct Scenario: Sendable {
    public var workloads: [Workload]

    /// `readFile` reads `data_file` paths (resolved against the scenario's folder by the caller).
    public init(
        text: String, catalog: RPCCatalog, readFile: (String) throws(LoadError) -> String
    ) throws(LoadError) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch {
            throw LoadError.usage("scenario: \(error.description)")
        }
        guard case .array(let entries)? = json["rpcs"] else {
            throw LoadError.usage("scenario: expected {\"rpcs\": [{\"rpc\": ..., \"weight\": ...}, ...]}")
        }
        guard !entries.isEmpty else { throw LoadError.usage("scenario: \"rpcs\" is empty") }
        var workloads: [Workload] = []
        for (index, entry) in entries.enumerated() {
            let label = "scenario rpcs[\(index)]"
            guard case .object(let members) = entry else { throw LoadError.usage("\(label): expected an object") }
            for member in members where !["rpc", "weight", "data", "data_file"].contains(member.key) {
                throw LoadError.usage("\(label): unknown key \"\(member.key)\" (rpc, weight, data, data_file)")
            }
            guard let name = entry["rpc"]?.stringValue else { throw LoadError.usage("\(label): \"rpc\" (a string) is required") }
            let rpc = try catalog.rpc(named: name)
            var weight = 1.0
            if let value = entry["weight"] {
                guard let number = value.numberValue, number > 0, number.isFinite else {
                    throw LoadError.usage("\(label): \"weight\" must be a positive number")
                }
                weight = number
            }
            let data: RequestData
            do throws(LoadError) {
                if let inline = entry["data"] {
                    if entry["data_file"] != nil { throw LoadError.usage("give \"data\" or \"data_file\", not both") }
                    data = try RequestData(text: inline.serialized(), rpc: rpc, schema: catalog.schema)
                } else if let file = entry["data_file"] {
                    guard let path = file.stringValue else { throw LoadError.usage("\"data_file\" must be a string") }
                    data = try RequestData(text: try readFile(path), rpc: rpc, schema: catalog.schema)
                } else {
                    data = try RequestData.builtIn(for: rpc, schema: catalog.schema)
                }
            } catch {
                throw LoadError.usage("\(label) (\(rpc.name)): \(error.description)")
            }
            workloads.append(Workload(rpc: rpc, data: data, weight: weight))
        }
        self.workloads = workloads
    }
}
