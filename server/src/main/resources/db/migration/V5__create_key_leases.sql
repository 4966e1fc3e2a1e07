-- Budget leases (README, "Budget leases"): an instance takes a slice of a key's remaining budget
-- and admits holds against it locally, without a round trip per request.
--
-- What this schema keeps: leased is exactly the sum of the key's key_leases.amount, and a grant is
-- made only while quota_used + leased + slice <= quota (one conditional UPDATE). It is not a CHECK:
-- an admin may lower a quota, and a charge may exceed its hold, below what is already leased.
--
-- leased is a column, not a sum over key_leases, so that a grant is ONE conditional UPDATE of the
-- key's row: under READ COMMITTED PostgreSQL re-checks that row's WHERE clause after waiting for
-- its lock, so two instances granting at once both see the other's leased. A sum in a subquery
-- would be read from the statement's snapshot, not re-checked, and two grants could both pass.
-- Every statement that changes key_leases.amount changes api_keys.leased by the same amount in
-- the same transaction (store/LeaseRepository, store/UsageRepository).
ALTER TABLE api_keys
    ADD COLUMN leased DECIMAL(20, 8) NOT NULL DEFAULT 0 CHECK (leased >= 0);

COMMENT ON COLUMN api_keys.leased IS 'USD leased to instances and not yet charged or given back: the sum of key_leases.amount';

-- One lease per (key, instance): taking again adds to it and extends it.
CREATE TABLE key_leases (
    key_id      BIGINT         NOT NULL REFERENCES api_keys (id),
    instance_id TEXT           NOT NULL CHECK (length(instance_id) BETWEEN 1 AND 128),
    amount      DECIMAL(20, 8) NOT NULL CHECK (amount >= 0),
    expires_at  TIMESTAMPTZ    NOT NULL,
    PRIMARY KEY (key_id, instance_id)
);

COMMENT ON TABLE key_leases IS 'slices of keys'' budgets leased to instances; an expired lease goes back to its key';
COMMENT ON COLUMN key_leases.amount IS 'USD of the key''s budget this instance may admit holds against';
COMMENT ON COLUMN key_leases.expires_at IS 'when the lease goes back to the key unless renewed (an instance that died)';

-- Renewal reads an instance's leases; the reaper reads those past their expiry.
CREATE INDEX key_leases_instance_idx ON key_leases (instance_id);
CREATE INDEX key_leases_expires_at_idx ON key_leases (expires_at);
