DROP TRIGGER subscriptions_feed_delete;
DROP TRIGGER subscriptions_feed_update;
DROP TRIGGER subscriptions_feed_insert;
DROP TABLE subscription_changes;
