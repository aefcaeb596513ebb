-- Run after the versioned migrations on every migration (DbUp run-always, DatabaseMigrator): edit the functions here,
-- never in a versioned script. `create or replace` keeps a function's identity, so statements the running Api
-- instances prepared keep working while a deployment replaces it; a change of arguments or result columns is a new
-- overload (or a drop in a versioned migration), not an edit here.
--
-- THE INGEST RULES. GitHubEventStore (CoTeX.Api/GitHubWebhooks) stores every GitHub delivery, per-repo webhook and
-- GitHub App alike, through ingest_github_events, one call per group-committed batch (history: migrations 0005, 0007;
-- measurements: docs/benchmarks.md). Element i of every array describes delivery i; one row comes back per delivery,
-- in input order, with o_outcome:
--   stored     stored with id o_id and the user's next position o_position, at o_received_at
--   duplicate  (repo_id, delivery_id) was seen before (github_deliveries, kept for the retention window), or earlier
--              in the same batch: nothing stored, no position taken
--   repo_gone  the repo no longer exists for this user: nothing stored, no position taken
-- and o_paused, whether the repo is paused: a paused repo's events are stored and deduplicated like any other's
-- (GitHubEventStore announces live only those of active repos).
-- Positions (users.last_event_seq, github_events.seq) are contiguous per user, in input order, and only stored events
-- take one: Realtime relies on it (a live event at position p after p-2 means p-1 must be looked up). The user rows
-- are locked first, sorted (the lock order of every writer that touches a user and their repos), so position p
-- commits before p+1 takes its number and two batches cannot deadlock. Every stored delivery of a repo stamps its
-- last_delivery_at, and a ping its last_ping_at.
-- Payloads (migration 0009): a payload that the batch stores for two or more events (a GitHub App delivery to a
-- repository's followers) is stored once, in github_event_payloads, and those events reference it (payload_id); a
-- payload stored for one event stays in the event's own row (body), as every per-repo webhook's does.

-- The payloads as the bytes GitHub sent, each once: element i of p_payload_refs is the (1-based) index in p_payloads
-- of delivery i's payload, so the followers of one app delivery share one element.
create or replace function ingest_github_events(
    p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[],
    p_senders text[], p_titles text[], p_html_urls text[], p_payload_refs int[], p_payloads bytea[])
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
          from unnest(p_repo_ids, p_user_ids, p_delivery_ids, p_event_types, p_actions, p_senders, p_titles, p_html_urls, p_payload_refs)
               with ordinality as i (repo_id, user_id, delivery_id, event_type, action, sender, title, html_url, payload_ref, ord)
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
    shared as (      -- the payloads stored for more than one event, each with the id of its one row
        select payload_ref, nextval('github_event_payload_ids') as payload_id, count(*)::int as refs
          from numbered
         group by payload_ref
        having count(*) > 1
    ),
    shared_stored as (
        insert into github_event_payloads (id, received_at, body, refs)
        select s.payload_id, v_received_at, p_payloads[s.payload_ref], s.refs from shared s
    ),
    stored as (
        insert into github_events (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, body, payload_id, received_at)
        select n.repo_id, n.user_id, b.base + n.n, n.delivery_id, n.event_type, n.action, n.sender, n.title, n.html_url,
               case when s.payload_id is null then p_payloads[n.payload_ref] end, s.payload_id, v_received_at
          from numbered n join bumped b using (user_id) left join shared s using (payload_ref)
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

-- The bytea[] overload of migration 0007, one payload per delivery, for statements prepared before 0009: the same
-- rules, through the one above (each delivery its own payload, so each is stored in its event's row, as before).
create or replace function ingest_github_events(
    p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[],
    p_senders text[], p_titles text[], p_html_urls text[], p_payloads bytea[])
returns table (o_outcome text, o_id bigint, o_position bigint, o_received_at timestamptz, o_paused boolean)
language sql
as $$
    select * from ingest_github_events(p_repo_ids, p_user_ids, p_delivery_ids, p_event_types, p_actions, p_senders,
        p_titles, p_html_urls, array(select generate_series(1, cardinality(p_payloads))), p_payloads)
$$;

-- The jsonb[] overload of migration 0005, for statements prepared before 0007: the same rules, through the bytea[] one.
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
