-- Charges the gateway took that no subscription records, each given back. A row is written, in
-- the transaction that decides it, before the refund is asked for; a recording of a charge whose
-- reference is here is refused (the refund and the recording are decided once, and one way).
CREATE TABLE unrecorded_charges (
    id BIGSERIAL PRIMARY KEY,
    gateway TEXT NOT NULL,
    gateway_reference TEXT NOT NULL UNIQUE,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    divisor BIGINT NOT NULL,
    -- Why no subscription records it, for support staff.
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- When the gateway accepted the refund (NULL: asked for, not yet confirmed).
    refunded_at TIMESTAMP
);
