-- Who holds a gateway event's lease (the instance id), as every other leased table says: one
-- lease rule (db::lease) for the outbox, webhook deliveries, subscriptions and gateway events.
ALTER TABLE gateway_events ADD COLUMN locked_by TEXT;
