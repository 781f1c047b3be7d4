-- One counter, raised in the transaction of every change to plans and promo codes (and their
-- redemption counts): instances compare it to the version of their in-memory catalog.
CREATE TABLE catalog_version (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);
