-- One index of usage_events per key instead of two (README "Storage", issue 19).
--
-- Every ledger row was written into four indexes: the primary key, report_id's unique index,
-- usage_events_key_idx (key_id, id DESC) for ListUsage's pages and usage_events_key_received_idx
-- (key_id, received_at) for the spending windows' read-back. The two per-key indexes order a key's
-- rows the same way (a row's id and received_at both grow with the commit that wrote it), so one
-- of them was pure write cost: pgbench inserting groups of 2,000 rows into a 4-million-row copy of
-- this table did 47 groups/s with both and 56-58/s with one (about a fifth of the insert's work).
--
-- The one left is (key_id, received_at, id): a key's rows since an instant for the windows, as
-- before, and for ListUsage a total order (received_at, then id for the rows of one commit) that
-- a page resumes from by a row comparison, so no page ever sorts.
--
-- Building it reads the whole ledger once while usage commits wait (about 3 s per 4 million rows
-- on the bench machine); README "Upgrading" says so.
CREATE INDEX usage_events_key_received_id_idx ON usage_events (key_id, received_at, id);
DROP INDEX usage_events_key_received_idx;
DROP INDEX usage_events_key_idx;
