-- Subscription lifecycle: renewals, grace retries, deactivation, promo durations, plan switches.
-- Keep in step with migrations/sqlite and schema.rs.

-- Start of the first paid period: every period end is computed from it (calendar months).
ALTER TABLE subscriptions ADD COLUMN billing_anchor_at TIMESTAMP;
-- Paid periods so far (0 while in a trial).
ALTER TABLE subscriptions ADD COLUMN periods_paid INTEGER NOT NULL DEFAULT 0;
-- When the worker next acts: the period end, a retry inside grace, or deactivation. NULL once ended.
ALTER TABLE subscriptions ADD COLUMN next_action_at TIMESTAMP;
-- Set while a renewal has failed and the subscription is inside its grace period.
ALTER TABLE subscriptions ADD COLUMN past_due_since TIMESTAMP;
ALTER TABLE subscriptions ADD COLUMN renewal_attempts INTEGER NOT NULL DEFAULT 0;
-- Renewals still discounted by the promo code: NULL with a promo code means forever.
ALTER TABLE subscriptions ADD COLUMN promo_periods_left INTEGER;
-- A plan switch that takes effect at the next renewal.
ALTER TABLE subscriptions ADD COLUMN pending_plan_id BIGINT REFERENCES plans (id);
-- Lease of the worker processing this subscription.
ALTER TABLE subscriptions ADD COLUMN locked_by TEXT;
ALTER TABLE subscriptions ADD COLUMN locked_until TIMESTAMP;

UPDATE subscriptions
SET billing_anchor_at = COALESCE(trial_ends_at, current_period_started_at),
    periods_paid = CASE WHEN trial_ends_at IS NULL THEN 1 ELSE 0 END,
    next_action_at = CASE WHEN deactivated_at IS NULL THEN current_period_ends_at END;

CREATE INDEX subscriptions_next_action ON subscriptions (next_action_at);

-- When a payment attempt claimed the checkout link: a claim left by a killed process is given back.
ALTER TABLE checkout_sessions ADD COLUMN claimed_at TIMESTAMP;

-- How long a promo code discounts: the first charge, every charge, or N billing periods.
ALTER TABLE promo_codes ADD COLUMN duration TEXT NOT NULL DEFAULT 'once' CHECK (duration IN ('once', 'forever', 'repeating'));
ALTER TABLE promo_codes ADD COLUMN duration_periods INTEGER CHECK (duration_periods > 0);

-- Payments may now be renewals; keep `kind` readable.
DROP VIEW promo_codes_overview;
CREATE VIEW promo_codes_overview AS
SELECT p.code, p.discount_type, p.percent_off, p.amount_off, p.currency, p.divisor,
       (SELECT string_agg(plan_id::text, ',' ORDER BY plan_id) FROM promo_code_plans pp WHERE pp.promo_code_id = p.id) AS eligible_plan_ids,
       p.duration, p.duration_periods,
       p.first_time_only, p.max_redemptions, p.times_redeemed, p.expires_at, p.active, p.note, p.created_at
FROM promo_codes p;
