-- Users are Supabase auth users: the id is the JWT's `sub`. A row is created the first time a user calls us.
-- last_event_seq is the user's event counter: each stored GitHub event takes the next value while holding this
-- row's lock, so a user's events become visible in exactly the order of their seq (what client catch-up relies on).
create table users (
    id              uuid primary key,
    email           text,
    is_anonymous    boolean     not null default false,
    created_at      timestamptz not null default now(),
    last_seen_at    timestamptz not null default now(),
    last_event_seq  bigint      not null default 0
);

-- One row per user that has ever touched billing; no row means Free.
create table subscriptions (
    user_id                 uuid primary key references users (id) on delete cascade,
    plan                    text        not null default 'free' check (plan in ('free', 'pro')),
    stripe_customer_id      text unique,
    stripe_subscription_id  text unique,
    status                  text,
    current_period_end      timestamptz,
    payment_problem         boolean     not null default false,
    updated_at              timestamptz not null default now()
);

-- A GitHub repository a user tracks. The webhook secret is stored encrypted (ASP.NET Data Protection).
create table tracked_repos (
    id                        uuid primary key,
    user_id                   uuid        not null references users (id) on delete cascade,
    full_name                 text        not null,
    webhook_secret_protected  text        not null,
    paused                    boolean     not null default false,
    created_at                timestamptz not null default now(),
    last_delivery_at          timestamptz,
    last_ping_at              timestamptz
);
create unique index tracked_repos_user_full_name on tracked_repos (user_id, lower(full_name));

-- Every GitHub delivery for a tracked repo, once: (repo_id, delivery_id) is the dedupe key.
create table github_events (
    id           bigint generated always as identity primary key,
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
    constraint github_events_repo_delivery unique (repo_id, delivery_id),
    constraint github_events_user_seq unique (user_id, seq)
);
create index github_events_user_id on github_events (user_id, id desc);
create index github_events_repo_id on github_events (repo_id, id desc);
create index github_events_received_at on github_events (received_at);

-- Stripe webhook events, stored once by their evt_ id; processed_at is null until handling succeeded.
create table stripe_events (
    id            text primary key,
    type          text        not null,
    payload       jsonb       not null,
    received_at   timestamptz not null default now(),
    processed_at  timestamptz,
    attempts      int         not null default 0,
    last_error    text
);
create index stripe_events_unprocessed on stripe_events (received_at) where processed_at is null;

-- ASP.NET Data Protection key ring, shared by every Api instance.
create table data_protection_keys (
    friendly_name  text primary key,
    xml            text        not null,
    created_at     timestamptz not null default now()
);
