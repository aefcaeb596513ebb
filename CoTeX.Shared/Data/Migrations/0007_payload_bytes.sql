-- Payloads as the bytes GitHub sent (issue 17, docs/benchmarks.md).
--
-- github_events.payload was jsonb: Postgres parsed every payload (~6 KB, ~50 us of a backend's CPU per event, a
-- quarter of an event's cost in the batch statement, measured with pgbench calling it with 1, 5 and 20 rows) into a
-- form nothing here needs: the Api reads the fields it needs before storing, Realtime sends summaries, and
-- GET /api/events/event returns the payload whole. New events keep the JSON exactly as delivered, in body (bytea,
-- lz4 like payload).
--
-- Online, for a table holding two weeks of events: payload becomes nullable and stays for the rows written before
-- this migration; readers take coalesce(body, payload). Once the retention window has passed over this migration
-- every row has a body, and a later migration can drop payload.
--
-- ingest_github_events gets an overload taking bytea[]; the jsonb[] one (0005) is replaced in place (statements the
-- previous version's Api instances prepared keep working during a rollout) and now stores through it.

alter table github_events alter column payload drop not null;
alter table github_events add column body bytea;

-- lz4 where the server has it, as for payload in 0005 (partitions created later take the parent's setting).
do $$
declare
    partition regclass;
begin
    if not exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any (enumvals)) then
        return;
    end if;
    alter table github_events alter column body set compression lz4;
    for partition in select inhrelid::regclass from pg_inherits where inhparent = 'github_events'::regclass loop
        execute format('alter table %s alter column body set compression lz4', partition);
    end loop;
end
$$;

-- Here were created ingest_github_events(..., bytea[]) and the jsonb[] one replaced by a call to it: both are now
-- defined in Data/Functions/ingest_github_events.sql, which runs after the versioned scripts on every migration (issue 25).
