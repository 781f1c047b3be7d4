DROP INDEX subscriptions_live_plan;
ALTER TABLE plans DROP COLUMN features;
