import Codec
import Domain
import FuzzDriver
import NIOCore

/// libFuzzer target for each domain's validators: arbitrary bytes decoded as the request a
/// client sends, mapped to the domain's input the way its service maps it, then checked by
/// the validator the service runs before anything is written.
///
/// The first byte picks the domain, the rest is the protobuf message. A validator may refuse
/// anything, but only with INVALID_ARGUMENT, and must never trap (an `abs(Int64.min)` in the
/// score checks did). Build and run with tools/fuzz/run.sh; without `-DFUZZING` it replays or
/// mutates inputs (see `FuzzDriver`).
enum ValidatorFuzz {
    /// The server clock the event checks compare client times with (2026-01-01).
    static let nowMs: Int64 = 1_767_225_600_000

    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let selector = bytes.first else { return }
        let payload = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
        switch selector % 6 {
        case 0: events(payload)
        case 1: topups(payload)
        case 2: quizAnswers(payload)
        case 3: rewards(payload)
        case 4: presence(payload)
        default: leaderboards(payload)
        }
    }

    /// `EventService.Track`: the batch size, then each event.
    static func events(_ payload: ByteBuffer) {
        guard let request = try? Tally_V1_TrackRequest(protobuf: payload) else { return }
        let validator = EventValidator()
        refused { try validator.checkBatchSize(request.events.count) }
        for (index, event) in request.events.enumerated() {
            if let problem = validator.problem(in: event, at: index, nowMs: nowMs) {
                precondition(problem.hasPrefix("events[\(index)]."), "an event's problem names another field: \(problem)")
            } else {
                precondition(EventRules.isStorableScore(event.score) && !event.id.isEmpty && !event.userId.isEmpty)
            }
        }
    }

    /// `TopupService.Topup`.
    static func topups(_ payload: ByteBuffer) {
        guard let request = try? Tally_V1_TopupRequest(protobuf: payload) else { return }
        let order = TopupOrder(
            idempotencyKey: request.idempotencyKey, phoneNumber: request.phoneNumber,
            amountMinorUnits: request.amount?.minorUnits ?? 0, currency: request.amount?.currency ?? "", carrier: request.carrier)
        if !refused({ try TopupRules.defaults.validate(order) }) {
            precondition(order.phoneNumber.utf8.first == UInt8(ascii: "+") && order.amountMinorUnits > 0)
        }
    }

    /// `QuizService.SubmitAnswers`: the quiz's board, then every answer.
    static func quizAnswers(_ payload: ByteBuffer) {
        guard let request = try? Tally_V1_SubmitAnswersRequest(protobuf: payload) else { return }
        let rules = QuizRules.defaults
        refused { _ = try rules.board(ofQuiz: request.quizId) }
        let answers = request.answers.map {
            QuizAnswer(userID: $0.userId, questionID: $0.questionId, answer: $0.answer, correct: $0.correct,
                       points: $0.points, responseTimeMs: $0.responseTimeMs, answeredAtMs: $0.answeredAtMs)
        }
        refused { try rules.validate(answers) }
    }

    /// `QuizService.DistributeRewards`: the tiers come back ordered and disjoint.
    static func rewards(_ payload: ByteBuffer) {
        guard let request = try? Tally_V1_DistributeRewardsRequest(protobuf: payload) else { return }
        let tiers = request.tiers.map { RewardTier(fromRank: Int($0.fromRank), toRank: Int($0.toRank), reward: $0.reward, repeatable: $0.repeatable) }
        var ordered: [RewardTier] = []
        if !refused({ ordered = try RewardRules.defaults.validate(tiers, distributionID: request.distributionId) }) {
            for (previous, next) in zip(ordered, ordered.dropFirst()) {
                precondition(previous.toRank < next.fromRank, "accepted tiers overlap")
            }
        }
    }

    /// `PresenceService.Connect`: whatever a client message carries.
    static func presence(_ payload: ByteBuffer) {
        guard let message = try? Tally_V1_PresenceClientMessage(protobuf: payload) else { return }
        switch message.kind {
        case .hello(let hello):
            refused { try Presence.checkName(hello.userId, field: "hello.user_id") }
            refused { try Presence.checkName(hello.device.isEmpty ? "default" : hello.device, field: "hello.device") }
        case .status(let update):
            refused { try PresenceSession.check(update, maxActivityBytes: PresenceConfiguration.defaults.maxActivityBytes) }
        case .subscribe(let subscribe):
            refused { try Presence.checkSubscription(subscribe.userIds, max: PresenceConfiguration.defaults.maxSubscriptions) }
        case .heartbeat, nil:
            break
        }
    }

    /// `LeaderboardService`: board ids (a parsed board prints back to itself), scores,
    /// tournaments.
    static func leaderboards(_ payload: ByteBuffer) {
        if let request = try? Tally_V1_SubmitRequest(protobuf: payload) {
            var board: BoardID?
            if !refused({ board = try BoardID(parsing: request.boardId) }), let board {
                precondition((try? BoardID(parsing: board.description)) == board, "\(board) does not parse back to itself")
            }
            precondition(EventRules.isStorableScore(request.score) == (abs(Double(request.score)) <= Double(EventRules.maxScore)))
        }
        if let request = try? Tally_V1_CreateTournamentRequest(protobuf: payload), let message = request.tournament {
            let tournament = Tournament(
                id: message.id, name: message.name, startsAtMs: message.startsAtMs, endsAtMs: message.endsAtMs,
                maxParticipants: message.maxParticipants == 0 ? nil : Int(message.maxParticipants), joinRequired: message.joinRequired)
            refused { try tournament.validate() }
        }
    }

    /// Runs a check; true when it refused, which it may only do with INVALID_ARGUMENT.
    @discardableResult
    static func refused(_ check: () throws -> Void) -> Bool {
        do {
            try check()
            return false
        } catch let error as RPCError {
            precondition(error.code == .invalidArgument, "a validator answered \(error.code): \(error.message)")
            return true
        } catch {
            preconditionFailure("a validator threw \(error)")
        }
    }
}

#if FUZZING
@_cdecl("ValidatorFuzz_main")
func validatorFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.libFuzzer(argc, argv) { ValidatorFuzz.run($0) }
}
#else
@main
struct ValidatorFuzzMain {
    static func main() throws {
        try FuzzDriver.main("ValidatorFuzz") { ValidatorFuzz.run($0) }
    }
}
#endif
