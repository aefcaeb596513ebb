-- Retention without long locks or bloat: events live in daily partitions of received_at, and the Worker drops a
-- whole day once it is past the window (plus a small row delete in the one partition that straddles the cut-off).
-- A partitioned table's unique keys must include the partition key, so the dedupe key (repo, delivery id) moves to
-- its own table, github_deliveries, trimmed by the same window in small batches.

create table github_deliveries (
    repo_id      uuid        not null references tracked_repos (id) on delete cascade,
    delivery_id  text        not null,
    received_at  timestamptz not null default now(),
    primary key (repo_id, delivery_id)
);
create index github_deliveries_received_at on github_deliveries (received_at);

-- Identity columns on partitioned tables need Postgres 17; a sequence does the same job.
create sequence github_event_ids as bigint;

create table github_events_partitioned (
    id           bigint      not null default nextval('github_event_ids'),
    repo_id      uuid        not null references tracked_repos (id) on delete cascade,
    user_id      uuid        not null references users (id) on delete cascade,
    seq          bigint      not null,
    delivery_id  text        not null,
    event_type   text        not null,
    action       text,
    sender       text,
    title        text,
    html_url     text,
    payload      jsonb       not null,
    received_at  timestamptz not null default now(),
    primary key (id, received_at)
) partition by range (received_at);

-- Catches anything no daily partition covers (the Worker creates them a week ahead), so an insert never fails.
create table github_events_default partition of github_events_partitioned default;

-- Daily partitions github_events_pYYYYMMDD for every day from first_day to last_day (UTC), if missing.
-- (parent is only given here, before the new table takes the name github_events.)
-- This script calls it, so it is created here; its current definition is Data/Functions/ensure_github_event_partitions.sql
-- (run after the versioned scripts on every migration, issue 25), which replaces this one with the same body.
create function ensure_github_event_partitions(first_day date, last_day date, parent text default 'github_events') returns int
language plpgsql as $$
declare
    day date := first_day;
    created int := 0;
    name text;
begin
    while day <= last_day loop
        name := 'github_events_p' || to_char(day, 'YYYYMMDD');
        if to_regclass(name) is null then
            execute format(
                'create table %I partition of %I for values from (%L) to (%L)',
                name, parent, (day::timestamp at time zone 'UTC'), ((day + 1)::timestamp at time zone 'UTC'));
            created := created + 1;
        end if;
        day := day + 1;
    end loop;
    return created;
end
$$;

select ensure_github_event_partitions((now() at time zone 'UTC')::date - 15, (now() at time zone 'UTC')::date + 7,
                                      'github_events_partitioned');

insert into github_deliveries (repo_id, delivery_id, received_at)
select repo_id, delivery_id, received_at from github_events;
insert into github_events_partitioned (id, repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, payload, received_at)
select id, repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, payload, received_at from github_events;
select setval('github_event_ids', coalesce((select max(id) from github_events), 0) + 1, false);

drop table github_events;
alter table github_events_partitioned rename to github_events;

create index github_events_id on github_events (id);
create index github_events_user_seq on github_events (user_id, seq);
create index github_events_user_id on github_events (user_id, id desc);
create index github_events_repo_id on github_events (repo_id, id desc);

-- ingest_github_event was replaced here, with the dedupe key in github_deliveries; it is defined in
-- Data/Functions/ingest_github_event.sql, which runs after the versioned scripts on every migration (issue 25).
