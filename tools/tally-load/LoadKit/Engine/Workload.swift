/// One RPC of a run with its request data and its share of the requests.
public struct Workload: Sendable {
    public var rpc: RPCDescription
    public var data: RequestData
    /// Relative weight in a scenario mix; a single-RPC run has one workload.
    public var weight: Double

    public init(rpc: RPCDescription, data: RequestData, weight: Double = 1) {
        self.rpc = rpc
        self.data = data
        self.weight = weight
    }
}
