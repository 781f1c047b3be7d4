-- A subscriber keeps the price and billing interval they signed up for: copied from the plan at
-- checkout (or when a switch takes effect). Editing a plan changes new checkouts only; moving
-- existing subscribers is a separate, explicit command (plans migrate-subscribers).
ALTER TABLE subscriptions ADD COLUMN amount BIGINT;
ALTER TABLE subscriptions ADD COLUMN currency TEXT;
ALTER TABLE subscriptions ADD COLUMN divisor BIGINT;
ALTER TABLE subscriptions ADD COLUMN billing_interval TEXT;
ALTER TABLE subscriptions ADD COLUMN interval_count INTEGER;
-- Existing subscribers keep what their plan says today.
UPDATE subscriptions SET
    amount = (SELECT p.amount FROM plans p WHERE p.id = subscriptions.plan_id),
    currency = (SELECT p.currency FROM plans p WHERE p.id = subscriptions.plan_id),
    divisor = (SELECT p.divisor FROM plans p WHERE p.id = subscriptions.plan_id),
    billing_interval = (SELECT p.billing_interval FROM plans p WHERE p.id = subscriptions.plan_id),
    interval_count = (SELECT p.interval_count FROM plans p WHERE p.id = subscriptions.plan_id);
