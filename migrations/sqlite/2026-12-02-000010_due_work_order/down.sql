DROP INDEX subscriptions_due;
CREATE INDEX subscriptions_next_action ON subscriptions (next_action_at);
