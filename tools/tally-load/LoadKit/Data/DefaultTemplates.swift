/// The built-in request data of each RPC: realistic values from the generators (random users
/// from the `--users` population, the event mix, scores, phone numbers, quiz answers), used
/// when no `-d`/`-D` template is given. An array is a stream's messages: message k uses
/// element k, the last one repeating (Presence says hello once, then heartbeats).
public enum DefaultTemplates {
    static let event = """
        {"id": "{{uuid}}", "type": "{{eventType}}", "user_id": "{{randomUser}}", "client_time_ms": {{now}},
         "score": {{randomScore}}, "game_mode": "{{pick classic blitz survival}}", "duration_ms": {{randomInt 1000 600000}},
         "level": {{randomInt 1 50}}, "attributes": {"platform": "{{pick ios android web}}"}}
        """
    static let answer = """
        {"user_id": "{{randomUser}}", "question_id": "q-{{randomInt 1 20}}", "answer": "{{answer}}", "correct": {{randomBool}},
         "points": {{randomInt 0 100}}, "response_time_ms": {{randomInt 500 20000}}, "answered_at_ms": {{now}}}
        """
    /// A fresh key per call that names its run (`--retry-share` resends some calls whole, so
    /// the server sees those keys again), German mobile numbers the sandbox provider charges
    /// (see `{{phone P}}`), 1 to 50 euros, carriers the server's rules know.
    static let topup = """
        {"idempotency_key": "load-{{runId}}-{{seq}}", "phone_number": "{{phone +49151}}",
         "amount": {"minor_units": {{randomInt 100 5000}}, "currency": "EUR"}, "carrier": "{{pick telekom-de vodafone-de o2-de}}"}
        """
    /// 32 fixed bytes: the very request of tools/bench/wire.sh and shared/peers/bench.sh.
    static let echo = #"{"payload": "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg="}"#

    public static let byRPC: [String: String] = [
        "bench.v1.Echo/Echo": echo,
        "bench.v1.Echo/EchoStream": echo,
        "bench.v1.Echo/Collect": echo,
        "bench.v1.Echo/Expand": #"{"payload": "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=", "repeat": 10}"#,
        "grpc.health.v1.Health/Check": "{}",
        "grpc.health.v1.Health/Watch": "{}",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo": #"{"list_services": "*"}"#,
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": #"{"list_services": "*"}"#,
        "tally.v1.EventService/Track": #"{"events": ["{{repeat}}", \#(event)]}"#,
        "tally.v1.EventService/Stream": #"{"sequence": {{msg}}, "events": ["{{repeat}}", \#(event)]}"#,
        "tally.v1.EventService/Recent": #"{"limit": 20, "user_id": "{{randomUser}}"}"#,
        "tally.v1.LeaderboardService/Top": #"{"board_id": "global", "limit": 10}"#,
        "tally.v1.LeaderboardService/Rank": #"{"board_id": "global", "user_id": "{{randomUser}}", "neighbours": 2}"#,
        "tally.v1.LeaderboardService/Submit": #"""
            {"board_id": "global", "user_id": "{{randomUser}}", "score": {{randomScore}}, "achieved_at_ms": {{now}},
             "submission_id": "{{uuid}}"}
            """#,
        "tally.v1.LeaderboardService/Watch": #"{"board_id": "global", "limit": 10, "min_interval_ms": 1000}"#,
        "tally.v1.LeaderboardService/CreateTournament": #"""
            {"tournament": {"id": "load-{{seq}}", "name": "Load tournament {{seq}}", "starts_at_ms": {{now}},
             "ends_at_ms": 4102444800000, "max_participants": 1000, "join_required": false}}
            """#,
        "tally.v1.LeaderboardService/JoinTournament": #"{"tournament_id": "load-{{randomInt 1 100}}", "user_id": "{{randomUser}}"}"#,
        "tally.v1.TopupService/Topup": topup,
        "tally.v1.TopupService/GetTopup": #"{"id": "{{uuid}}"}"#,
        "tally.v1.TopupService/ListTopups": #"{"limit": 20}"#,
        "tally.v1.QuizService/SubmitAnswers": #"{"quiz_id": "quiz-{{randomInt 1 10}}", "answers": ["{{repeat}}", \#(answer)]}"#,
        "tally.v1.QuizService/StreamAnswers": #"{"quiz_id": "quiz-{{randomInt 1 10}}", "answers": ["{{repeat}}", \#(answer)]}"#,
        "tally.v1.QuizService/Leaderboard": #"{"quiz_id": "quiz-{{randomInt 1 10}}", "limit": 10}"#,
        "tally.v1.QuizService/DistributeRewards": #"""
            {"quiz_id": "quiz-{{randomInt 1 10}}", "distribution_id": "{{uuid}}",
             "tiers": [{"from_rank": 1, "to_rank": 3, "reward": "gold"}, {"from_rank": 4, "to_rank": 10, "reward": "silver"}]}
            """#,
        "tally.v1.PresenceService/Connect": #"""
            [{"hello": {"user_id": "{{randomUser}}", "device": "{{pick ios android web}}"}},
             {"subscribe": {"user_ids": ["{{randomUser}}", "{{randomUser}}", "{{randomUser}}"]}},
             {"status": {"status": "{{pick PRESENCE_STATUS_ONLINE PRESENCE_STATUS_AWAY PRESENCE_STATUS_BUSY}}", "activity": "{{pick lobby match menu}}"}},
             {"heartbeat": {"client_time_ms": {{now}}}}]
            """#,
        "tally.v1.AdminService/Stats": "{}",
        "tally.v1.AdminService/Metrics": #"{"prefix": ""}"#,
        "tally.v1.AdminService/QueueStats": "{}",
    ]

    /// The built-in template text of `rpc` (`{}`, every field at its default, for an RPC
    /// without one).
    public static func text(for rpc: RPCDescription) -> String {
        byRPC[rpc.name] ?? "{}"
    }
}
