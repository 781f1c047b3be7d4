-- Back to two states: a dead entry is pending again, a skipped one counts as delivered.
UPDATE treefort_outbox SET status = 'pending' WHERE status = 'dead';
UPDATE treefort_outbox SET status = 'delivered', delivered_at = skipped_at WHERE status = 'skipped';
ALTER TABLE treefort_outbox DROP CONSTRAINT treefort_outbox_status_check;
ALTER TABLE treefort_outbox ADD CONSTRAINT treefort_outbox_status_check
    CHECK (status IN ('pending', 'delivered'));
ALTER TABLE treefort_outbox DROP COLUMN skip_reason;
ALTER TABLE treefort_outbox DROP COLUMN skipped_by;
ALTER TABLE treefort_outbox DROP COLUMN skipped_at;
ALTER TABLE treefort_outbox DROP COLUMN dead_at;
