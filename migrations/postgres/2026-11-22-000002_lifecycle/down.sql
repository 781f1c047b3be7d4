DROP VIEW promo_codes_overview;
CREATE VIEW promo_codes_overview AS
SELECT p.code, p.discount_type, p.percent_off, p.amount_off, p.currency, p.divisor,
       (SELECT string_agg(plan_id::text, ',' ORDER BY plan_id) FROM promo_code_plans pp WHERE pp.promo_code_id = p.id) AS eligible_plan_ids,
       p.first_time_only, p.max_redemptions, p.times_redeemed, p.expires_at, p.active, p.note, p.created_at
FROM promo_codes p;
ALTER TABLE checkout_sessions DROP COLUMN claimed_at;
ALTER TABLE promo_codes DROP COLUMN duration_periods;
ALTER TABLE promo_codes DROP COLUMN duration;
DROP INDEX subscriptions_next_action;
ALTER TABLE subscriptions DROP COLUMN locked_until;
ALTER TABLE subscriptions DROP COLUMN locked_by;
ALTER TABLE subscriptions DROP COLUMN pending_plan_id;
ALTER TABLE subscriptions DROP COLUMN promo_periods_left;
ALTER TABLE subscriptions DROP COLUMN renewal_attempts;
ALTER TABLE subscriptions DROP COLUMN past_due_since;
ALTER TABLE subscriptions DROP COLUMN next_action_at;
ALTER TABLE subscriptions DROP COLUMN periods_paid;
ALTER TABLE subscriptions DROP COLUMN billing_anchor_at;
