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

-- Same contract as before (migration 0002), with the dedupe key in github_deliveries.
create or replace function ingest_github_event(
    p_repo_id uuid, p_user_id uuid, p_delivery_id text, p_event_type text, p_action text, p_sender text,
    p_title text, p_html_url text, p_payload jsonb)
returns table (o_outcome text, o_id bigint, o_position bigint, o_received_at timestamptz, o_paused boolean)
language plpgsql as $$
declare
    v_position bigint;
    v_paused boolean;
    v_id bigint;
    v_received_at timestamptz := now();
begin
    update users set last_event_seq = last_event_seq + 1 where id = p_user_id returning last_event_seq into v_position;

    update tracked_repos
       set last_delivery_at = v_received_at,
           last_ping_at = case when p_event_type = 'ping' then v_received_at else last_ping_at end
     where id = p_repo_id and user_id = p_user_id
    returning paused into v_paused;
    if not found then
        update users set last_event_seq = last_event_seq - 1 where id = p_user_id;
        return query select 'repo_gone', null::bigint, null::bigint, null::timestamptz, null::boolean;
        return;
    end if;

    insert into github_deliveries (repo_id, delivery_id, received_at) values (p_repo_id, p_delivery_id, v_received_at)
    on conflict (repo_id, delivery_id) do nothing;
    if not found then
        update users set last_event_seq = last_event_seq - 1 where id = p_user_id;
        return query select 'duplicate', null::bigint, null::bigint, null::timestamptz, v_paused;
        return;
    end if;

    insert into github_events (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, payload, received_at)
    values (p_repo_id, p_user_id, v_position, p_delivery_id, p_event_type, p_action, p_sender, p_title, p_html_url, p_payload, v_received_at)
    returning id into v_id;

    return query select 'stored', v_id, v_position, v_received_at, v_paused;
end
$$;
