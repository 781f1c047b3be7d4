DROP TRIGGER subscriptions_feed_delete ON subscriptions;
DROP TRIGGER subscriptions_feed_update ON subscriptions;
DROP TRIGGER subscriptions_feed_insert ON subscriptions;
DROP FUNCTION subscriptions_feed_update();
DROP FUNCTION subscriptions_feed_rows();
DROP TABLE subscription_changes;
