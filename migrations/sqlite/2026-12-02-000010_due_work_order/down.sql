DROP INDEX treefort_outbox_pending;
DROP INDEX subscriptions_due;
CREATE INDEX subscriptions_next_action ON subscriptions (next_action_at);
