-- A deleted account keeps a tombstone: its tokens stay cryptographically valid until they expire, and the tombstone
-- is how they are refused (instead of the account being re-created on first sight).
alter table users add column deleted_at timestamptz;
