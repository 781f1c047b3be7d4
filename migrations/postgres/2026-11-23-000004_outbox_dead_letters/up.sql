-- Dead letters in the Treefort outbox: an update Treefort rejected for good (a 4xx, or a create
-- answered without an id) is `dead`, kept with its error, and still holds back the later updates
-- of its subscription (they must not overtake it) until an operator retries it or `skipped` it on
-- purpose (who and why are recorded). Keep in step with migrations/sqlite and schema.rs.
ALTER TABLE treefort_outbox DROP CONSTRAINT treefort_outbox_status_check;
ALTER TABLE treefort_outbox ADD CONSTRAINT treefort_outbox_status_check
    CHECK (status IN ('pending', 'delivered', 'dead', 'skipped'));
ALTER TABLE treefort_outbox ADD COLUMN dead_at TIMESTAMP;       -- when Treefort rejected it for good
ALTER TABLE treefort_outbox ADD COLUMN skipped_at TIMESTAMP;
ALTER TABLE treefort_outbox ADD COLUMN skipped_by TEXT;         -- who skipped it (outbox skip --by)
ALTER TABLE treefort_outbox ADD COLUMN skip_reason TEXT;
