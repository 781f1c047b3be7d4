ALTER TABLE gateway_events DROP COLUMN locked_by;
