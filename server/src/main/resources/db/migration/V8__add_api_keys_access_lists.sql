-- Per-key access lists (README "Key policies"): who may call a key and what it may ask for.
-- Empty (the default) means no restriction. Entries are stored canonical, as the admin API wrote
-- them (CIDR blocks such as 10.0.0.0/8 and 2001:db8::/32; model names and prefixes ending in *);
-- a row changed by hand with a malformed CIDR entry makes that entry match nothing.
--
-- Part of the key's row and its version: a change bumps the version and sends the change
-- notification, so every instance applies it like any other admin change. Adding the columns with
-- a constant default rewrites no row (PostgreSQL 11+).
ALTER TABLE api_keys
    ADD COLUMN ip_allow    TEXT[] NOT NULL DEFAULT '{}' CHECK (cardinality(ip_allow) <= 100),
    ADD COLUMN ip_deny     TEXT[] NOT NULL DEFAULT '{}' CHECK (cardinality(ip_deny) <= 100),
    ADD COLUMN model_allow TEXT[] NOT NULL DEFAULT '{}' CHECK (cardinality(model_allow) <= 64);

COMMENT ON COLUMN api_keys.ip_allow IS 'CIDR blocks a client must be in to use the key; empty = any';
COMMENT ON COLUMN api_keys.ip_deny IS 'CIDR blocks whose clients are refused; wins over ip_allow';
COMMENT ON COLUMN api_keys.model_allow IS 'models the key may ask for (exact, or prefix ending in *); empty = any';
