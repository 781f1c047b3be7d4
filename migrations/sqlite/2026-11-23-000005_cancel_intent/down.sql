ALTER TABLE subscriptions DROP COLUMN cancel_requested_at;
