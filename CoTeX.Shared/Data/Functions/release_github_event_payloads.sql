-- Run after the versioned migrations on every migration (DbUp run-always, DatabaseMigrator): edit the function here,
-- never in a versioned script.
--
-- The trigger github_events_release_payloads (migration 0009) calls this after every statement that deletes events,
-- with the deleted rows as `gone`: a shared payload (github_event_payloads, stored once for a delivery's followers)
-- loses one reference per deleted event that pointed at it, and goes when none is left. So a closed account or an
-- untracked repository takes its events, while the payloads its teammates' events share stay, and a payload no event
-- references is not kept. Retention drops a day's events and payloads together (no trigger fires for a dropped
-- partition) and deletes the straddling day's payloads itself.
create or replace function release_github_event_payloads() returns trigger
language plpgsql as $$
begin
    if not exists (select 1 from gone where payload_id is not null) then
        return null; -- events that kept their own payload: nothing shared to release
    end if;
    -- Locked in id order, so two accounts closing at once (each releasing payloads they shared) cannot deadlock.
    perform 1
       from github_event_payloads p
      where (p.id, p.received_at) in (select payload_id, received_at from gone where payload_id is not null)
      order by p.id
        for update;
    -- Those that lose their last references go; the others count fewer (in this order: after the update, a count
    -- could not tell a payload that lost all its references from one that still has as many as it lost).
    delete from github_event_payloads p
     using (select payload_id, received_at, count(*)::int as n from gone where payload_id is not null
             group by payload_id, received_at) g
     where p.id = g.payload_id and p.received_at = g.received_at and p.refs <= g.n;
    update github_event_payloads p
       set refs = p.refs - g.n
      from (select payload_id, received_at, count(*)::int as n from gone where payload_id is not null
             group by payload_id, received_at) g
     where p.id = g.payload_id and p.received_at = g.received_at;
    return null;
end
$$;
