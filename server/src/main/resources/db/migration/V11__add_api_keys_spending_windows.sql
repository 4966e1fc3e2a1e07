-- Rolling spending windows (README "Key policies"): at most window_<w>_usd USD spent in any 5
-- hours, 1 day, 7 days or 30 days, exact to the minute. 0 (the default) means no such window.
-- Part of the key's row and its version, like every other policy.
--
-- spent_usd is the key's lifetime spend: what quota_used would be if nothing ever reset it
-- (neither ResetQuota nor a budget period's rollover touch it). It only ever grows, so an instance
-- that reads a newer row than the one it holds knows exactly what was charged in between: the
-- difference is charged to the current minute of the key's windows in memory (keys/UsageWindows).
-- NUMERIC(24,8): lifetime spend may pass what one quota can hold (NUMERIC(20,8)).
ALTER TABLE api_keys
    ADD COLUMN window_5h_usd  NUMERIC(20, 8) NOT NULL DEFAULT 0 CHECK (window_5h_usd >= 0),
    ADD COLUMN window_1d_usd  NUMERIC(20, 8) NOT NULL DEFAULT 0 CHECK (window_1d_usd >= 0),
    ADD COLUMN window_7d_usd  NUMERIC(20, 8) NOT NULL DEFAULT 0 CHECK (window_7d_usd >= 0),
    ADD COLUMN window_30d_usd NUMERIC(20, 8) NOT NULL DEFAULT 0 CHECK (window_30d_usd >= 0),
    ADD COLUMN spent_usd      NUMERIC(24, 8) NOT NULL DEFAULT 0 CHECK (spent_usd >= 0);

-- Usage already charged before this migration is lifetime spend too (quota_used is lifetime for
-- every key that has no budget period; for one that has, the ended periods add to it).
UPDATE api_keys k
   SET spent_usd = k.quota_used
       + coalesce((SELECT sum(p.used) FROM key_budget_periods p WHERE p.key_id = k.id), 0);

COMMENT ON COLUMN api_keys.spent_usd IS 'lifetime USD charged; never reset (spending windows follow its growth)';
COMMENT ON COLUMN api_keys.window_5h_usd IS 'most USD spent in any rolling 5 hours; 0 = no limit';

-- A windowed key's minute sums are read once when an instance starts tracking it: the key's usage
-- of the last 30 days at most, by this index only, never the key's whole history.
CREATE INDEX usage_events_key_received_idx ON usage_events (key_id, received_at);
