-- Holds for usage-stream reporters (README, "Holds for usage-stream reporters"): a key with
-- hold_usd_per_request > 0 (and a quota) is admitted by Check only on a hold of that amount against
-- the instance's budget lease (V5); the allow response carries the hold's id, and a usage report
-- that names it settles it on any instance. A hold never settled expires: hold_expiry says whether
-- its amount is then charged (the request went upstream and was never reported: no free spend) or
-- released.
ALTER TABLE api_keys
    ADD COLUMN hold_usd_per_request DECIMAL(20, 8) NOT NULL DEFAULT 0
        CHECK (hold_usd_per_request >= 0),
    ADD COLUMN hold_expiry TEXT NOT NULL DEFAULT 'charge'
        CHECK (hold_expiry IN ('charge', 'release'));

COMMENT ON COLUMN api_keys.hold_usd_per_request IS 'USD Check holds per request for usage-stream reporters; 0 = no hold';
COMMENT ON COLUMN api_keys.hold_expiry IS 'what an unsettled reporter hold does at its expiry: charge its amount, or release it';

-- The hold a charge settled: at most one charge per hold, whoever reports it and wherever (a real
-- report on any instance, or the holder's charge at expiry). The unique index is what makes a
-- second settlement insert nothing.
ALTER TABLE usage_events
    ADD COLUMN hold_id TEXT CHECK (length(hold_id) BETWEEN 1 AND 256);

COMMENT ON COLUMN usage_events.hold_id IS 'the reporter hold this charge settled, if any';

CREATE UNIQUE INDEX usage_events_hold_id_idx ON usage_events (hold_id) WHERE hold_id IS NOT NULL;

-- The key every instance signs hold ids with (HMAC-SHA256), so that a hold id is honoured only if an
-- instance issued it: a forged one could otherwise draw on any instance's lease. Created by the
-- first instance to start (INSERT ... ON CONFLICT DO NOTHING), read by every other.
CREATE TABLE cluster_secrets (
    name       TEXT        PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    secret     BYTEA       NOT NULL CHECK (length(secret) >= 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

COMMENT ON TABLE cluster_secrets IS 'keys shared by every instance (hold id signatures); never shown';
