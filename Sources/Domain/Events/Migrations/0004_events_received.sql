-- `Recent` without a user or type filter reads the newest events (ORDER BY received_at DESC):
-- give it an index on received_at. The partial index of 0001 on unprocessed rows is dropped:
-- no query reads it, and the workers write every event already processed (EventStore sets
-- processed_at in the same insert), so it only ever held rows loaded by other means.
-- received_at grows with time, so this index is appended to at its right edge: cheap to keep.
DROP INDEX events_unprocessed;
CREATE INDEX events_received ON events (received_at);
