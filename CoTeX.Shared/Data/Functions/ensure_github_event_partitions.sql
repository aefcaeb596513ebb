-- Run after the versioned migrations on every migration (DbUp run-always, DatabaseMigrator): edit the function here,
-- never in a versioned script. Called by the Worker's retention (RetentionJob) with today and a week ahead, so the
-- events of the coming days always have a daily partition to go to.
--
-- Daily partitions github_events_pYYYYMMDD of github_events for every day from first_day to last_day (UTC), if
-- missing, and beside each the day's partition of the shared payloads (github_event_payloads_pYYYYMMDD, migration
-- 0009), which retention drops with it; returns how many days it created partitions for. (parent is only given by
-- migration 0003, which calls this before the partitioned table takes the name github_events, and so keeps its own
-- copy of this function; there are no payload partitions then.)
create or replace function ensure_github_event_partitions(first_day date, last_day date, parent text default 'github_events') returns int
language plpgsql as $$
declare
    day date := first_day;
    created int := 0;
    name text;
    made boolean;
begin
    while day <= last_day loop
        made := false;
        name := 'github_events_p' || to_char(day, 'YYYYMMDD');
        if to_regclass(name) is null then
            execute format(
                'create table %I partition of %I for values from (%L) to (%L)',
                name, parent, (day::timestamp at time zone 'UTC'), ((day + 1)::timestamp at time zone 'UTC'));
            made := true;
        end if;
        name := 'github_event_payloads_p' || to_char(day, 'YYYYMMDD');
        if parent = 'github_events' and to_regclass(name) is null then
            execute format(
                'create table %I partition of github_event_payloads for values from (%L) to (%L)',
                name, (day::timestamp at time zone 'UTC'), ((day + 1)::timestamp at time zone 'UTC'));
            made := true;
        end if;
        created := created + made::int;
        day := day + 1;
    end loop;
    return created;
end
$$;
