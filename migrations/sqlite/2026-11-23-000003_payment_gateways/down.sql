DROP TABLE gateway_events;
DROP INDEX payments_gateway_reference;
ALTER TABLE payments DROP COLUMN dispute_reason;
ALTER TABLE payments DROP COLUMN disputed_at;
ALTER TABLE payments DROP COLUMN refunded_at;
ALTER TABLE payments DROP COLUMN refunded_amount;
ALTER TABLE checkout_sessions DROP COLUMN gateway_payment_ref;
ALTER TABLE checkout_sessions DROP COLUMN payment_attempts;
ALTER TABLE customers DROP COLUMN gateway_customer_ref;
