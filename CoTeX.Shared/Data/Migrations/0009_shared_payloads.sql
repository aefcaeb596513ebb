-- Team fan-out (issue 27, item 3; docs/benchmarks.md): a GitHub App delivery to a repository that N users follow was
-- stored as N github_events rows each holding the whole payload (N copies, N times the WAL). Its payload is now stored
-- once, in github_event_payloads, and the followers' rows reference it (github_events.payload_id); a delivery stored
-- for one user (every per-repo webhook, an app repository with one follower) keeps its payload in its own row
-- (github_events.body), as before: no second row, nothing to release. The rule is in ingest_github_events
-- (Data/Functions/ingest_github_events.sql); readers take coalesce(p.body, e.body, e.payload).
--
-- Rows written before this migration keep their bodies; nothing is rewritten (as in 0007), and retention removes them
-- in its window.

create sequence github_event_payload_ids;

-- Partitioned by day like github_events, with the same received_at as the events that reference a payload (the one
-- time of their ingest transaction), so retention drops a day of both together.
create table github_event_payloads (
    id           bigint      not null default nextval('github_event_payload_ids'),
    received_at  timestamptz not null,
    -- The JSON as delivered (as github_events.body).
    body         bytea       not null,
    -- github_events rows referencing it: when their deletion (an account closed, a repository untracked) brings it to
    -- zero, the payload goes with the last of them (release_github_event_payloads).
    refs         int         not null check (refs > 0),
    primary key (id, received_at)
) partition by range (received_at);
create table github_event_payloads_default partition of github_event_payloads default;

alter table github_events add column payload_id bigint;

-- lz4 where the server has it, as for github_events.body (0007).
do $$
declare
    partition regclass;
begin
    if not exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any (enumvals)) then
        return;
    end if;
    alter table github_event_payloads alter column body set compression lz4;
    for partition in select inhrelid::regclass from pg_inherits where inhparent = 'github_event_payloads'::regclass loop
        execute format('alter table %s alter column body set compression lz4', partition);
    end loop;
end
$$;

-- A daily partition of payloads for every day github_events has one (ensure_github_event_partitions, which the Worker
-- calls, makes both from now on).
do $$
declare
    day text;
begin
    for day in select substr(c.relname, length('github_events_p') + 1)
                 from pg_inherits i join pg_class c on c.oid = i.inhrelid
                where i.inhparent = 'github_events'::regclass and c.relname ~ '^github_events_p[0-9]{8}$' loop
        execute format('create table %I partition of github_event_payloads for values from (%L) to (%L)',
            'github_event_payloads_p' || day,
            (to_date(day, 'YYYYMMDD')::timestamp at time zone 'UTC'), ((to_date(day, 'YYYYMMDD') + 1)::timestamp at time zone 'UTC'));
    end loop;
end
$$;

-- Releasing payloads when events go. A first copy of the trigger function, for the trigger below; its definition is
-- Data/Functions/release_github_event_payloads.sql, which runs after this script.
create or replace function release_github_event_payloads() returns trigger language plpgsql as $$
begin
    return null;
end
$$;

-- Once per statement that deletes events (a cascade from tracked_repos included), with the deleted rows: not once per
-- row, since closing an account deletes all of its events at once.
create trigger github_events_release_payloads
    after delete on github_events
    referencing old table as gone
    for each statement execute function release_github_event_payloads();
