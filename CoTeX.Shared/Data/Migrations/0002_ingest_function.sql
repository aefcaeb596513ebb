-- Positions are contiguous per user: a duplicate delivery or a vanished repo gives its number back. Realtime relies
-- on it: a live event at position p after p-2 means p-1 must be looked up, never "maybe it was a duplicate".
-- Retention (the Worker) records here the highest position it has removed, so a client resuming from before it is
-- told to reload history rather than silently missing events.
alter table users add column pruned_through_seq bigint not null default 0;

-- ingest_github_event (one delivery in one round trip) was created here; it is defined in
-- Data/Functions/ingest_github_event.sql, which runs after the versioned scripts on every migration (issue 25).
