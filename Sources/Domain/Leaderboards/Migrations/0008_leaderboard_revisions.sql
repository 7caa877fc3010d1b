-- Quiz boards hold each user's *current* score, which may go down (a later answer replaces an
-- earlier one), so their rows are replaced rather than max-merged. Concurrent writers of one
-- user must still land in commit order everywhere (Redis, every instance's mirror): each write
-- of a row on such a board takes the next value of leaderboard_revisions while it holds the
-- row's lock, and a copy keeps a write only when its revision is newer than the one it has.
-- NULL on best-score boards (global, tournament:<id>), which keep max-merging.
ALTER TABLE leaderboard_scores ADD COLUMN revision bigint;
CREATE SEQUENCE leaderboard_revisions;
