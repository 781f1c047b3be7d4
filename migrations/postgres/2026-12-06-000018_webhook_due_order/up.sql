-- Due deliveries in the order they are claimed (next_attempt_at, then id), so a claim reads the
-- first few heads from the index and stops, whatever the planner's statistics say.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, status, next_attempt_at, id);
