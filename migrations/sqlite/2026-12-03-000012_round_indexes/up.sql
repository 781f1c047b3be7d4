-- Every worker round looks for cancellations sent but never recorded: a handful of rows among
-- every subscription. A partial index holds only those, so a round costs the same with a million
-- subscriptions (a full scan took 100 ms a round with a million on SQLite). Checkout attempts
-- left mid-payment, the other such search, go through checkout_sessions_one_payment_per_user.
CREATE INDEX subscriptions_cancel_requested ON subscriptions (cancel_requested_at) WHERE cancel_requested_at IS NOT NULL;
