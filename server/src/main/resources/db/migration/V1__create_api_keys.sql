-- API keys: one row per key, never hard-deleted (deleted_at marks a soft delete).
CREATE TABLE api_keys (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT           NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    key_hash    BYTEA          NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix  TEXT           NOT NULL,
    status      TEXT           NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    quota       DECIMAL(20, 8) NOT NULL DEFAULT 0 CHECK (quota >= 0),
    quota_used  DECIMAL(20, 8) NOT NULL DEFAULT 0 CHECK (quota_used >= 0),
    expires_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ    NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ    NOT NULL DEFAULT now(),
    deleted_at  TIMESTAMPTZ,
    version     BIGINT         NOT NULL DEFAULT 1
);

COMMENT ON TABLE api_keys IS 'API keys with their own USD quota and expiry; the secret itself is never stored';
COMMENT ON COLUMN api_keys.key_hash IS 'SHA-256 of the secret (sk-...), the only form in which it is kept';
COMMENT ON COLUMN api_keys.key_prefix IS 'first characters of the secret, for display';
COMMENT ON COLUMN api_keys.quota IS 'quota in USD; 0 means unlimited';
COMMENT ON COLUMN api_keys.quota_used IS 'USD charged so far, exact to 1e-8; ResetQuota sets it to 0';
COMMENT ON COLUMN api_keys.expires_at IS 'when the key stops working; NULL means never';
COMMENT ON COLUMN api_keys.version IS 'row version, bumped on every change; caches never replace newer state with older';

CREATE INDEX api_keys_quota_idx ON api_keys (quota, quota_used) WHERE deleted_at IS NULL;
CREATE INDEX api_keys_expires_at_idx ON api_keys (expires_at) WHERE deleted_at IS NULL;

-- Append-only audit of admin changes.
CREATE TABLE key_audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id     BIGINT      NOT NULL REFERENCES api_keys (id),
    action     TEXT        NOT NULL,
    old_value  JSONB,
    new_value  JSONB,
    actor      TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX key_audit_key_idx ON key_audit (key_id, id);

COMMENT ON TABLE key_audit IS 'one row per admin change; append-only';

CREATE FUNCTION key_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'key_audit is append-only';
END;
$$;

CREATE TRIGGER key_audit_append_only
    BEFORE UPDATE OR DELETE ON key_audit
    FOR EACH ROW EXECUTE FUNCTION key_audit_is_append_only();
