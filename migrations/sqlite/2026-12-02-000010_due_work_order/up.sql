-- The worker claims due subscriptions soonest first, ties by id, a wave at a time: one index
-- gives that order without sorting, however many subscriptions share a due moment.
DROP INDEX subscriptions_next_action;
CREATE INDEX subscriptions_due ON subscriptions (next_action_at, id);
