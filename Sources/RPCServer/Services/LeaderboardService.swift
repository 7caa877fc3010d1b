import Codec
public import Domain
import Foundation
import Units

/// `tally.v1.LeaderboardService`: boards, ranks, watch streams and tournaments.
public struct LeaderboardService: RPCService {
    let store: LeaderboardStore
    let watch: LeaderboardWatch
    let tournaments: Tournaments

    /// Bounds of the request fields (leaderboard.proto).
    static let maxLimit = 1000
    static let maxNeighbours = 50
    static let minWatchInterval = 100

    public init(store: LeaderboardStore, watch: LeaderboardWatch, tournaments: Tournaments) {
        self.store = store
        self.watch = watch
        self.tournaments = tournaments
    }

    public var methods: [RPCMethod] {
        [
            .unary(Self.path("Top")) { (request: Tally_V1_TopRequest, context: ServerContext) in
                let board = try BoardID(parsing: request.boardId)
                let limit = try Self.limit(request.limit)
                let page = try await store.top(board, limit: limit, cursor: request.cursor, deadline: context.deadline)
                var response = Tally_V1_TopResponse()
                response.entries = page.entries.map { Self.message($0, quizBoard: board.keepsLatest) }
                response.nextCursor = page.nextCursor
                response.total = Int64(page.total)
                return response
            },
            .unary(Self.path("Rank")) { (request: Tally_V1_RankRequest, context: ServerContext) in
                let board = try BoardID(parsing: request.boardId)
                guard !request.userId.isEmpty else { throw RPCError(.invalidArgument, "user_id: must not be empty") }
                guard (0...Self.maxNeighbours).contains(Int(request.neighbours)) else {
                    throw RPCError(.invalidArgument, "neighbours: must be between 0 and \(Self.maxNeighbours), got \(request.neighbours)")
                }
                guard let window = try await store.rank(board, user: request.userId, neighbours: Int(request.neighbours), deadline: context.deadline) else {
                    throw RPCError(.notFound, "user \(request.userId.prefix(128)) has no score on \(board)")
                }
                var response = Tally_V1_RankResponse()
                response.entry = Self.message(window.entry, quizBoard: board.keepsLatest)
                response.above = window.above.map { Self.message($0, quizBoard: board.keepsLatest) }
                response.below = window.below.map { Self.message($0, quizBoard: board.keepsLatest) }
                response.total = Int64(window.total)
                return response
            },
            .unary(Self.path("Submit"), access: .admin) { (request: Tally_V1_SubmitRequest, context: ServerContext) in
                let board = try BoardID(parsing: request.boardId)
                guard !request.userId.isEmpty, request.userId.utf8.count <= 128 else {
                    throw RPCError(.invalidArgument, "user_id: 1..128 bytes")
                }
                guard EventRules.isStorableScore(request.score) else {
                    throw RPCError(.invalidArgument, "score: must be within ±\(EventRules.maxScore)")
                }
                let at = request.achievedAtMs == 0 ? Date().unixMilliseconds : request.achievedAtMs
                // A quiz board (latest scores, written by QuizService) is refused: INVALID_ARGUMENT.
                let improved = try await store.submit(
                    [ScoreUpdate(board: board, userID: request.userId, score: request.score, achievedAtMs: at)],
                    submissionID: request.submissionId.isEmpty ? nil : request.submissionId, deadline: context.deadline)
                var response = Tally_V1_SubmitResponse()
                response.improved = !improved.isEmpty
                if let window = try await store.rank(board, user: request.userId, neighbours: 0, deadline: context.deadline) {
                    response.entry = Self.message(window.entry, quizBoard: board.keepsLatest)
                }
                return response
            },
            .serverStreaming(Self.path("Watch")) {
                (request: Tally_V1_WatchRequest, updates: ResponseWriter<Tally_V1_WatchUpdate>, context: ServerContext) in
                let board = try BoardID(parsing: request.boardId)
                let limit = try Self.limit(request.limit)
                let interval = max(Self.minWatchInterval, Int(request.minIntervalMs == 0 ? 1000 : request.minIntervalMs))
                try await watch.run(board, limit: limit, minInterval: .milliseconds(interval)) { page in
                    var update = Tally_V1_WatchUpdate()
                    update.entries = page.entries.map { Self.message($0, quizBoard: board.keepsLatest) }
                    update.total = Int64(page.total)
                    try await updates.write(update)
                }
            },
            .unary(Self.path("CreateTournament"), access: .admin) { (request: Tally_V1_CreateTournamentRequest, context: ServerContext) in
                guard let message = request.tournament else { throw RPCError(.invalidArgument, "tournament: required") }
                let created = try await tournaments.create(
                    Tournament(id: message.id, name: message.name, startsAtMs: message.startsAtMs, endsAtMs: message.endsAtMs,
                               maxParticipants: message.maxParticipants == 0 ? nil : Int(message.maxParticipants),
                               joinRequired: message.joinRequired),
                    deadline: context.deadline)
                var response = Tally_V1_CreateTournamentResponse()
                response.tournament = Self.message(created)
                return response
            },
            .unary(Self.path("JoinTournament")) { (request: Tally_V1_JoinTournamentRequest, context: ServerContext) in
                guard !request.tournamentId.isEmpty else { throw RPCError(.invalidArgument, "tournament_id: must not be empty") }
                guard !request.userId.isEmpty, request.userId.utf8.count <= 128 else {
                    throw RPCError(.invalidArgument, "user_id: 1..128 bytes")
                }
                let (tournament, joined) = try await tournaments.join(
                    request.tournamentId, user: request.userId, nowMs: Date().unixMilliseconds, deadline: context.deadline)
                var response = Tally_V1_JoinTournamentResponse()
                response.tournament = Self.message(tournament)
                response.joined = joined
                return response
            },
        ]
    }

    static func limit(_ requested: Int32) throws(RPCError) -> Int {
        if requested == 0 { return 10 }
        guard (1...maxLimit).contains(Int(requested)) else {
            throw RPCError(.invalidArgument, "limit: must be between 1 and \(maxLimit), got \(requested)")
        }
        return Int(requested)
    }

    /// A board's entry; on a quiz board the engine's tie-breaker time is the total response
    /// time (see `ScoreUpdate.achievedAtMs`).
    static func message(_ entry: LeaderboardEntry, quizBoard: Bool) -> Tally_V1_LeaderboardEntry {
        var message = Tally_V1_LeaderboardEntry()
        message.rank = Int64(entry.rank)
        message.userId = entry.userID
        message.score = entry.score
        if quizBoard {
            message.totalTimeMs = entry.achievedAtMs
        } else {
            message.achievedAtMs = entry.achievedAtMs
        }
        return message
    }

    private static func message(_ tournament: Tournament) -> Tally_V1_Tournament {
        var message = Tally_V1_Tournament()
        message.id = tournament.id
        message.name = tournament.name
        message.startsAtMs = tournament.startsAtMs
        message.endsAtMs = tournament.endsAtMs
        message.maxParticipants = Int32(tournament.maxParticipants ?? 0)
        message.joinRequired = tournament.joinRequired
        message.participants = Int32(tournament.participants)
        return message
    }

    private static func path(_ method: String) -> String {
        RPCMethod.path(service: "tally.v1.LeaderboardService", method: method)
    }
}
