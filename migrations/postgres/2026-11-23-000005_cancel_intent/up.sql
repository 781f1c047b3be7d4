-- A cancellation in flight: written (with the subscription's lease held) before Treefort is
-- PATCHed, cleared when the outcome is recorded. One left behind (the process died after
-- Treefort's answer) is finished by the worker: the subscription is never charged again, and
-- Treefort gets the same `canceledAt` again (a PATCH it can take twice).
ALTER TABLE subscriptions ADD COLUMN cancel_requested_at TIMESTAMP;
