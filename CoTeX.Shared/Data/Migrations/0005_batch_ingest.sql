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

create function ingest_github_events(
    p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[],
    p_senders text[], p_titles text[], p_html_urls text[], p_payloads jsonb[])
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
        insert into github_events (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, payload, received_at)
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
