-- What a subscription to the plan unlocks in the app owner's products: a JSON object of booleans,
-- integers and short strings (domain::features), in effect for current subscribers at once.
ALTER TABLE plans ADD COLUMN features TEXT NOT NULL DEFAULT '{}';
-- A plan's current subscribers, found without a scan when its features change.
CREATE INDEX subscriptions_live_plan ON subscriptions (plan_id) WHERE deactivated_at IS NULL;
