-- The usage ledger: one row per charged report. report_id makes a charge exactly-once.
CREATE TABLE usage_events (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id           TEXT           NOT NULL UNIQUE CHECK (length(report_id) BETWEEN 1 AND 128),
    key_id              BIGINT         NOT NULL REFERENCES api_keys (id),
    cost                DECIMAL(20, 8) NOT NULL CHECK (cost >= 0),
    model               TEXT           NOT NULL DEFAULT '',
    provider            TEXT           NOT NULL DEFAULT '',
    input_tokens        BIGINT         NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens       BIGINT         NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cached_input_tokens BIGINT         NOT NULL DEFAULT 0 CHECK (cached_input_tokens >= 0),
    cache_write_tokens  BIGINT         NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    occurred_at         TIMESTAMPTZ    NOT NULL,
    received_at         TIMESTAMPTZ    NOT NULL DEFAULT now()
);

COMMENT ON TABLE usage_events IS 'usage ledger and spend log: every accepted report, once';
COMMENT ON COLUMN usage_events.cost IS 'USD charged for this report, exact to 1e-8';

-- ListUsage reads a key's events newest first.
CREATE INDEX usage_events_key_idx ON usage_events (key_id, id DESC);
