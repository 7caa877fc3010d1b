-- Best score per user and board: the source of truth behind the Redis sorted sets.
-- board is a BoardID's text form (global, tournament:<id>, quiz:<id>).
CREATE TABLE leaderboard_scores (
    board       text        NOT NULL,
    user_id     text        NOT NULL,
    score       bigint      NOT NULL,
    achieved_at timestamptz NOT NULL,
    PRIMARY KEY (board, user_id)
);
-- Rebuilding a board's sorted set and reading top-N from Postgres, ties by earlier achievement.
CREATE INDEX leaderboard_scores_rank ON leaderboard_scores (board, score DESC, achieved_at);
