-- Positions are contiguous per user: a duplicate delivery or a vanished repo gives its number back. Realtime relies
-- on it: a live event at position p after p-2 means p-1 must be looked up, never "maybe it was a duplicate".
-- Retention (the Worker) records here the highest position it has removed, so a client resuming from before it is
-- told to reload history rather than silently missing events.
alter table users add column pruned_through_seq bigint not null default 0;

-- Stores one GitHub delivery in one round trip and one transaction. The user row is locked first (as every other
-- writer that touches a user and their repos does), which also orders the user's events: position p commits before
-- p+1 takes its number, so a reader that sees p can see every position below it.
create function ingest_github_event(
    p_repo_id uuid, p_user_id uuid, p_delivery_id text, p_event_type text, p_action text, p_sender text,
    p_title text, p_html_url text, p_payload jsonb)
returns table (o_outcome text, o_id bigint, o_position bigint, o_received_at timestamptz, o_paused boolean)
language plpgsql as $$
declare
    v_position bigint;
    v_paused boolean;
    v_id bigint;
    v_received_at timestamptz;
begin
    update users set last_event_seq = last_event_seq + 1 where id = p_user_id returning last_event_seq into v_position;

    update tracked_repos
       set last_delivery_at = now(),
           last_ping_at = case when p_event_type = 'ping' then now() else last_ping_at end
     where id = p_repo_id and user_id = p_user_id
    returning paused into v_paused;
    if not found then
        update users set last_event_seq = last_event_seq - 1 where id = p_user_id;
        return query select 'repo_gone', null::bigint, null::bigint, null::timestamptz, null::boolean;
        return;
    end if;

    insert into github_events (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, payload)
    values (p_repo_id, p_user_id, v_position, p_delivery_id, p_event_type, p_action, p_sender, p_title, p_html_url, p_payload)
    on conflict (repo_id, delivery_id) do nothing
    returning id, received_at into v_id, v_received_at;
    if v_id is null then
        update users set last_event_seq = last_event_seq - 1 where id = p_user_id;
        return query select 'duplicate', null::bigint, null::bigint, null::timestamptz, v_paused;
        return;
    end if;

    return query select 'stored', v_id, v_position, v_received_at, v_paused;
end
$$;
