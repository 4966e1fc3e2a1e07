-- Per-key concurrency cap (README, "Holds": concurrency): at most max_concurrent_requests metered
-- requests of the key in flight across every instance; 0 means no cap.
--
-- Enforced by the same leasing as the budget (V5): an instance leases slots of the key's cap in
-- one conditional UPDATE (... WHERE max_concurrent_requests - slots_leased >= :slots) and admits
-- requests locally against them. slots_leased is exactly the sum of the key's key_slot_leases.slots;
-- a lease of an instance that died expires and its slots go back to the key.
ALTER TABLE api_keys
    ADD COLUMN max_concurrent_requests INTEGER NOT NULL DEFAULT 0
        CHECK (max_concurrent_requests BETWEEN 0 AND 1000000),
    ADD COLUMN slots_leased INTEGER NOT NULL DEFAULT 0 CHECK (slots_leased >= 0);

COMMENT ON COLUMN api_keys.max_concurrent_requests IS 'most metered requests of the key in flight across all instances; 0 = no cap';
COMMENT ON COLUMN api_keys.slots_leased IS 'concurrency slots leased to instances: the sum of key_slot_leases.slots';

CREATE TABLE key_slot_leases (
    key_id      BIGINT      NOT NULL REFERENCES api_keys (id),
    instance_id TEXT        NOT NULL CHECK (length(instance_id) BETWEEN 1 AND 128),
    slots       INTEGER     NOT NULL CHECK (slots >= 0),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, instance_id)
);

COMMENT ON TABLE key_slot_leases IS 'concurrency slots of keys leased to instances; an expired lease goes back to its key';

CREATE INDEX key_slot_leases_instance_idx ON key_slot_leases (instance_id);
CREATE INDEX key_slot_leases_expires_at_idx ON key_slot_leases (expires_at);
