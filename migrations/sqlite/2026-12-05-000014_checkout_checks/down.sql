ALTER TABLE checkout_sessions DROP COLUMN next_check_at;
ALTER TABLE checkout_sessions DROP COLUMN gateway_checks;
