-- Run after the versioned migrations on every migration (DbUp run-always, DatabaseMigrator): edit the function here,
-- never in a versioned script.
--
-- The one-delivery ingest (migrations 0002, then 0003 with the dedupe key in github_deliveries). Nothing in this
-- version calls it: GitHubEventStore calls ingest_github_events (ingest_github_events.sql), whose rules it shares. It
-- stayed for Api instances of the version before 0005 during that rollout; a versioned migration can drop it, and
-- this file goes with it.
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
