-- A feed of the users whose subscriptions changed in what the entitlement check shows, written by
-- triggers so that every writer is covered (this service, the CLI, a support engineer in psql).
-- Each instance reads it from its last position to drop those users from its memory, and hears
-- of new rows at commit (NOTIFY). Rows carry their transaction's id: an instance reads from the
-- oldest transaction still running at its last read (`pg_snapshot_xmin`), so a transaction that
-- commits late is never skipped. Rows older than an hour are deleted by the worker.
CREATE TABLE subscription_changes (
    xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    user_id    TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX subscription_changes_xid ON subscription_changes (xid);
CREATE INDEX subscription_changes_changed_at ON subscription_changes (changed_at);

-- One call per statement: the worker records a wave of renewals in one UPDATE.
-- For an INSERT or a DELETE, every row named in `changed_rows` (the new or the old ones).
CREATE FUNCTION subscriptions_feed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscription_changes (user_id) SELECT DISTINCT user_id FROM changed_rows;
    IF FOUND THEN
        PERFORM pg_notify('treefort_webpay_subscriptions', '');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION subscriptions_feed_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subscription_changes (user_id)
    SELECT DISTINCT u.user_id
    FROM new_rows n JOIN old_rows o ON o.id = n.id,
         LATERAL (VALUES (n.user_id), (o.user_id)) AS u (user_id)
    WHERE (n.user_id, n.plan_id, n.current_period_ends_at, n.trial_ends_at, n.canceled_at,
           n.deactivated_at, n.past_due_since)
          IS DISTINCT FROM
          (o.user_id, o.plan_id, o.current_period_ends_at, o.trial_ends_at, o.canceled_at,
           o.deactivated_at, o.past_due_since);
    IF FOUND THEN
        PERFORM pg_notify('treefort_webpay_subscriptions', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER subscriptions_feed_insert AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_feed_rows();
CREATE TRIGGER subscriptions_feed_update AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_feed_update();
CREATE TRIGGER subscriptions_feed_delete AFTER DELETE ON subscriptions
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_feed_rows();
