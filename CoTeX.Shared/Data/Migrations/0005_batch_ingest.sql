-- Faster ingestion (issue 8, docs/benchmarks.md).
--
-- 1. ingest_github_events: one call stores a whole group-committed batch (GitHubEventStore). Calling
--    ingest_github_event once per delivery cost about 0.6 ms of database time per delivery; here each statement runs
--    once per batch. Element i of every array describes delivery i, and one row comes back per delivery, in input order:
--      stored     stored with this id and per-user position
--      duplicate  (repo_id, delivery_id) was seen before, or earlier in the same batch
--      repo_gone  the repo no longer exists for this user
--    Positions stay contiguous per user, in input order, and only stored events take one.
--    ingest_github_event (0003) stays for Api instances still running the previous version during a rollout.
--
-- 2. Payloads are compressed with lz4 instead of pglz: compressing a 5-13 KB payload was most of an insert's cost
--    (measured on 2,000 rows of 13 KB: 200-250 us per row with pglz, 83 us with lz4, for about 30% more space).
--    A partitioned table passes the setting on to partitions created later, not to existing ones, hence the loop.
--    Rows already stored keep their pglz compression; both read the same.
--
-- 3. github_events_id (id) goes: the primary key (id, received_at) already finds an event by id, and every insert
--    paid for the extra index.

-- ingest_github_events (jsonb[]) was created here; it is defined in Data/Functions/ingest_github_events.sql, which runs
-- after the versioned scripts on every migration (issue 25).

-- (Only where the server was built with lz4, as every packaged Postgres 14+ is; otherwise pglz stays.)
do $$
declare
    partition regclass;
begin
    if not exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any (enumvals)) then
        raise notice 'this server has no lz4: payloads stay compressed with pglz';
        return;
    end if;
    alter table github_events alter column payload set compression lz4;
    for partition in select inhrelid::regclass from pg_inherits where inhparent = 'github_events'::regclass loop
        execute format('alter table %s alter column payload set compression lz4', partition);
    end loop;
end
$$;

drop index github_events_id;
