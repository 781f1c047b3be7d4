-- The worker claims due subscriptions soonest first, ties by id, a wave at a time: one index
-- gives that order without sorting, however many subscriptions share a due moment.
DROP INDEX subscriptions_next_action;
CREATE INDEX subscriptions_due ON subscriptions (next_action_at, id);
-- Treefort updates are claimed oldest first among the pending ones: without this index the
-- claim walks every delivered entry before the first pending one, and slows as history grows.
CREATE INDEX treefort_outbox_pending ON treefort_outbox (id) WHERE status = 'pending';
