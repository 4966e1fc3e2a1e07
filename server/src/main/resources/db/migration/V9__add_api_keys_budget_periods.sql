-- Periodic budgets (README "Key policies"). A key with budget_period other than 'none' spends its
-- quota per calendar period in budget_time_zone, each period starting at budget_reset_minute
-- (minute of the day): daily, weekly (Mondays) or monthly (the 1st). quota_used is then the
-- current period's usage: when a period ends, the row is rolled over (quota_used back to 0,
-- period_started_at/period_ends_at moved on) and the ended period's spend is kept in
-- key_budget_periods. For keys without a period nothing changes: quota_used stays lifetime usage.
ALTER TABLE api_keys
    ADD COLUMN budget_period       TEXT     NOT NULL DEFAULT 'none'
        CHECK (budget_period IN ('none', 'daily', 'weekly', 'monthly')),
    ADD COLUMN budget_reset_minute SMALLINT NOT NULL DEFAULT 0
        CHECK (budget_reset_minute BETWEEN 0 AND 1439),
    ADD COLUMN budget_time_zone    TEXT     NOT NULL DEFAULT 'UTC'
        CHECK (length(budget_time_zone) BETWEEN 1 AND 64),
    ADD COLUMN period_started_at   TIMESTAMPTZ,
    ADD COLUMN period_ends_at      TIMESTAMPTZ,
    ADD CONSTRAINT api_keys_period_bounds CHECK (
        (budget_period = 'none' AND period_started_at IS NULL AND period_ends_at IS NULL)
        OR (budget_period <> 'none' AND period_started_at < period_ends_at));

COMMENT ON COLUMN api_keys.budget_period IS 'none, daily, weekly or monthly: the period quota is spent per';
COMMENT ON COLUMN api_keys.period_ends_at IS 'end (exclusive) of the current budget period; the row is rolled over after it';

-- The rollover sweep finds due keys by this index only.
CREATE INDEX api_keys_period_ends_at_idx ON api_keys (period_ends_at)
    WHERE budget_period <> 'none' AND deleted_at IS NULL;

-- Every ended budget period of a key: written once, by the rollover, never changed.
CREATE TABLE key_budget_periods (
    id          BIGSERIAL     PRIMARY KEY,
    key_id      BIGINT        NOT NULL REFERENCES api_keys (id),
    period      TEXT          NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
    time_zone   TEXT          NOT NULL,
    started_at  TIMESTAMPTZ   NOT NULL,
    ended_at    TIMESTAMPTZ   NOT NULL CHECK (ended_at > started_at),
    budget      NUMERIC(20,8) NOT NULL CHECK (budget >= 0),
    used        NUMERIC(20,8) NOT NULL CHECK (used >= 0),
    recorded_at TIMESTAMPTZ   NOT NULL DEFAULT now(),
    UNIQUE (key_id, started_at)
);

COMMENT ON TABLE key_budget_periods IS 'ended budget periods of keys and what each spent (admin ListBudgetPeriods)';
