-- When reconciliation looks a payment attempt up at the gateway next, and how often it has: an
-- attempt left at 3-D Secure is read after 3 minutes, then 1, 2, 4 and 8 minutes apart, not
-- every round. A new attempt starts again from none.
ALTER TABLE checkout_sessions ADD COLUMN gateway_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkout_sessions ADD COLUMN next_check_at TIMESTAMP;
