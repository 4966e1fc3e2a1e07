-- Rate limits (README "Key policies"): requests per minute and tokens per minute per key, across
-- every instance. 0 (the default) means no limit. Part of the key's row and its version.
--
-- tokens_used is the key's lifetime token count (input + output of every charged report), never
-- reset: like spent_usd (V11) its growth between two rows of the key is exactly what was charged
-- in between, so every instance keeps the last minutes' tokens in memory from the rows it sees.
ALTER TABLE api_keys
    ADD COLUMN requests_per_minute INTEGER NOT NULL DEFAULT 0
        CHECK (requests_per_minute BETWEEN 0 AND 100000000),
    ADD COLUMN tokens_per_minute   BIGINT  NOT NULL DEFAULT 0
        CHECK (tokens_per_minute BETWEEN 0 AND 1000000000000000),
    ADD COLUMN tokens_used         BIGINT  NOT NULL DEFAULT 0 CHECK (tokens_used >= 0);

COMMENT ON COLUMN api_keys.requests_per_minute IS 'most requests admitted in any 60 s, across all instances; 0 = no limit';
COMMENT ON COLUMN api_keys.tokens_per_minute IS 'requests refused while the last minute''s reported tokens reach it; 0 = no limit';
COMMENT ON COLUMN api_keys.tokens_used IS 'lifetime input + output tokens charged; never reset';

-- Request permits an instance was granted for a key: usable from start_second to end_second
-- (epoch seconds, inclusive) only. A grant is made only while the permits of every grant whose
-- span comes within 60 s of the new one's, plus the new ones, stay within requests_per_minute
-- (checked under a per-key advisory lock), so no 60 s span of any instance's admissions can hold
-- more than requests_per_minute. Rows older than two minutes are deleted by the grants.
CREATE TABLE key_rate_grants (
    key_id       BIGINT  NOT NULL REFERENCES api_keys (id),
    start_second BIGINT  NOT NULL,
    end_second   BIGINT  NOT NULL CHECK (end_second >= start_second),
    granted      INTEGER NOT NULL CHECK (granted > 0),
    PRIMARY KEY (key_id, start_second, end_second)
);

COMMENT ON TABLE key_rate_grants IS 'request permits leased to instances per key and second span (rate limits)';
