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

-- As in 0005, with the payload as bytes.
create function ingest_github_events(
    p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[],
    p_senders text[], p_titles text[], p_html_urls text[], p_payloads bytea[])
returns table (o_outcome text, o_id bigint, o_position bigint, o_received_at timestamptz, o_paused boolean)
language plpgsql
-- The plans do not depend on the arrays' contents; planning the statement below on every call cost ~0.5 ms.
set plan_cache_mode = force_generic_plan
as $$
declare
    v_received_at timestamptz := now();
begin
    -- Lock order as everywhere else: the user rows first (sorted, so two batches cannot deadlock), then their repos.
    perform 1 from users where id in (select distinct unnest(p_user_ids)) order by id for no key update;

    return query
    with input as (
        select *
          from unnest(p_repo_ids, p_user_ids, p_delivery_ids, p_event_types, p_actions, p_senders, p_titles, p_html_urls, p_payloads)
               with ordinality as i (repo_id, user_id, delivery_id, event_type, action, sender, title, html_url, payload, ord)
    ),
    live as (        -- the batch's repos that still exist for their user, stamped with this delivery time
        update tracked_repos r
           set last_delivery_at = v_received_at,
               last_ping_at = case when d.pinged then v_received_at else r.last_ping_at end
          from (select repo_id, user_id, bool_or(event_type = 'ping') as pinged from input group by repo_id, user_id) d
         where r.id = d.repo_id and r.user_id = d.user_id
     returning r.id as repo_id, r.user_id, r.paused
    ),
    firsts as (      -- the first of each delivery id within the batch, for live repos
        select distinct on (i.repo_id, i.delivery_id) i.*
          from input i join live l using (repo_id, user_id)
         order by i.repo_id, i.delivery_id, i.ord
    ),
    fresh as (       -- the ones not seen before
        insert into github_deliveries (repo_id, delivery_id, received_at)
        select repo_id, delivery_id, v_received_at from firsts order by ord
        on conflict (repo_id, delivery_id) do nothing
        returning repo_id, delivery_id
    ),
    numbered as (
        select f.*, row_number() over (partition by f.user_id order by f.ord) as n
          from firsts f join fresh using (repo_id, delivery_id)
    ),
    bumped as (      -- each user's position counter moves past the new events at once
        update users u
           set last_event_seq = u.last_event_seq + c.total
          from (select user_id, count(*) as total from numbered group by user_id) c
         where u.id = c.user_id
     returning u.id as user_id, u.last_event_seq - c.total as base
    ),
    stored as (
        insert into github_events (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, body, received_at)
        select n.repo_id, n.user_id, b.base + n.n, n.delivery_id, n.event_type, n.action, n.sender, n.title, n.html_url, n.payload, v_received_at
          from numbered n join bumped b using (user_id)
         order by n.ord
     returning id, seq, repo_id, delivery_id
    )
    select case when l.repo_id is null then 'repo_gone' when s.id is null then 'duplicate' else 'stored' end,
           s.id, s.seq, case when s.id is not null then v_received_at end, l.paused
      from input i
      left join live l using (repo_id, user_id)
      left join numbered n on n.ord = i.ord
      left join stored s on s.repo_id = n.repo_id and s.delivery_id = n.delivery_id
     order by i.ord;
end
$$;

create or replace function ingest_github_events(
    p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[],
    p_senders text[], p_titles text[], p_html_urls text[], p_payloads jsonb[])
returns table (o_outcome text, o_id bigint, o_position bigint, o_received_at timestamptz, o_paused boolean)
language sql
as $$
    select * from ingest_github_events(p_repo_ids, p_user_ids, p_delivery_ids, p_event_types, p_actions, p_senders,
        p_titles, p_html_urls,
        array(select convert_to(p::text, 'UTF8') from unnest(p_payloads) with ordinality as u (p, i) order by i))
$$;
