ALTER TABLE subscriptions DROP COLUMN interval_count;
ALTER TABLE subscriptions DROP COLUMN billing_interval;
ALTER TABLE subscriptions DROP COLUMN divisor;
ALTER TABLE subscriptions DROP COLUMN currency;
ALTER TABLE subscriptions DROP COLUMN amount;
