import Foundation

/// The message a reward sends its user: its id names the reward (quiz, distribution, user), so
/// it is recorded once however often the distribution is replayed, and a sink can deduplicate
/// redeliveries on it.
enum RewardMessage {
    static let kind = "quiz.reward"

    static func message(for reward: Reward, quizID: String, distributionID: String) -> NotificationMessage {
        let body: [String: Any] = ["quiz_id": quizID, "distribution_id": distributionID, "rank": reward.rank, "reward": reward.reward]
        let json = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return NotificationMessage(id: "reward:\(quizID):\(distributionID):\(reward.userID)", destination: reward.userID, kind: kind, body: json)
    }
}
