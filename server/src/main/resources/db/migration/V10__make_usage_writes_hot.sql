-- Usage ingest writes (README "Storage"): every committed usage group updates quota_used (and
-- updated_at, version) of each key it charges, and inserts one usage_events row per report.
--
-- 1. Counter updates become HOT (heap-only tuples). An UPDATE that changes no indexed column and
--    finds room on the row's own page writes no index entry and leaves no dead version behind in
--    any index; the page's dead versions are pruned by the next access, not left to vacuum. Before
--    this migration quota_used was in api_keys_quota_idx, so no charge was HOT: 1,000 keys took
--    280,979 updates in one bench run, each a new entry in all five indexes of api_keys, and the
--    table and its indexes grew by tens of MB of dead tuples that every lookup of a key walked.
--    Nothing queries by quota_used (or by quota): the index goes. The columns a charge changes
--    (quota_used, updated_at, version, leased, slots_leased) are then in no index.
DROP INDEX api_keys_quota_idx;

--    Room for the new versions on the same page: one group charges every key on a page at once,
--    and the old versions can only be pruned after it commits, so a page needs room for a second
--    copy of its rows. Applies to pages written from now on (keys created or moved by an update);
--    `VACUUM FULL api_keys` in a quiet moment applies it to the whole table at once.
ALTER TABLE api_keys SET (fillfactor = 50);

-- 2. No per-row foreign-key check on usage_events.key_id. It was a trigger per inserted row (a
--    FOR KEY SHARE lookup in api_keys: about a quarter of the insert's time for a group of 2,000),
--    and it checked what the write path already guarantees: a group inserts rows only for keys it
--    found live and holds FOR UPDATE in the same transaction (store/UsageRepository), and a key is
--    never deleted (deleted_at marks a soft delete). That last rule was only a convention; it is
--    now enforced below, so a key id in usage_events always names a row of api_keys.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_key_id_fkey;

CREATE FUNCTION api_keys_are_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'api_keys rows are never deleted; set deleted_at (DeleteKey) instead';
END;
$$;

CREATE TRIGGER api_keys_never_deleted
    BEFORE DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_are_never_deleted();

CREATE TRIGGER api_keys_never_truncated
    BEFORE TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_are_never_deleted();
