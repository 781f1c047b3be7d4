-- A feed of the users whose subscriptions changed in what the entitlement check shows, written by
-- triggers so that every writer is covered (this service, the CLI, a support engineer in
-- sqlite3). Each instance reads it from its last position to drop those users from its memory.
-- Writers take turns on SQLite, so `seq` grows in commit order. Rows older than an hour are
-- deleted by the worker.
CREATE TABLE subscription_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX subscription_changes_changed_at ON subscription_changes (changed_at);

CREATE TRIGGER subscriptions_feed_insert AFTER INSERT ON subscriptions
BEGIN
    INSERT INTO subscription_changes (user_id) VALUES (NEW.user_id);
END;

CREATE TRIGGER subscriptions_feed_update
AFTER UPDATE OF user_id, plan_id, current_period_ends_at, trial_ends_at, canceled_at,
    deactivated_at, past_due_since ON subscriptions
WHEN NEW.user_id IS NOT OLD.user_id OR NEW.plan_id IS NOT OLD.plan_id
    OR NEW.current_period_ends_at IS NOT OLD.current_period_ends_at
    OR NEW.trial_ends_at IS NOT OLD.trial_ends_at OR NEW.canceled_at IS NOT OLD.canceled_at
    OR NEW.deactivated_at IS NOT OLD.deactivated_at OR NEW.past_due_since IS NOT OLD.past_due_since
BEGIN
    INSERT INTO subscription_changes (user_id) VALUES (NEW.user_id);
    INSERT INTO subscription_changes (user_id) SELECT OLD.user_id WHERE OLD.user_id IS NOT NEW.user_id;
END;

CREATE TRIGGER subscriptions_feed_delete AFTER DELETE ON subscriptions
BEGIN
    INSERT INTO subscription_changes (user_id) VALUES (OLD.user_id);
END;
