-- Score improvements committed to leaderboard_scores whose merge into Redis is not confirmed
-- yet. A row is inserted in the same transaction as the scores it names and deleted once its
-- writer merged them into Redis; a row older than a few seconds means that merge was lost (Redis
-- down, or the writer died between its commit and its merge). Every instance reads these rows:
-- their boards are behind their truth (no mirror answers them), and any instance re-merges the
-- named users' best scores from leaderboard_scores (an idempotent max-merge) and deletes them.
CREATE TABLE leaderboard_pending_merges (
    id           bigserial   PRIMARY KEY,
    boards       text[]      NOT NULL,
    user_ids     text[]      NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
