-- GitHub App mode (issue 18): one installation of CoTeX's GitHub App serves every CoTeX user who can access its
-- repositories on GitHub, beside the per-repo webhooks.
--
-- Who receives an app delivery for repository R of installation I: every user with an app-delivered tracked repo for
-- R, a connection that is not revoked, and an access row for (I, R), I being neither suspended nor deleted. Access
-- rows say what GitHub answered for that user (GET /user/installations/{id}/repositories with their token) at the
-- last check; the app's own events remove rows at once, and the Worker checks every connection again on an interval.

create table github_app_installations (
    id                 bigint primary key,         -- GitHub's installation id
    account_login      text        not null,
    account_type       text        not null,       -- User or Organization
    suspended_at       timestamptz,
    deleted_at         timestamptz,                -- kept as a tombstone, so an older event cannot bring it back
    github_updated_at  timestamptz,                -- installation.updated_at of the newest event applied
    updated_at         timestamptz not null default now()
);

-- A CoTeX user's GitHub account, connected through the app's user authorization. Tokens are protected with Data
-- Protection (whose key ring is encrypted at rest), like webhook secrets.
create table github_connections (
    user_id                  uuid primary key references users (id) on delete cascade,
    github_user_id           bigint      not null,
    github_login             text        not null,
    token_protected          text,                 -- null once revoked
    refresh_token_protected  text,
    token_expires_at         timestamptz,
    connected_at             timestamptz not null default now(),
    checked_at               timestamptz not null default now(),
    recheck_after            timestamptz not null, -- the Worker checks the connection again from this time
    revoked_at               timestamptz
);
create index github_connections_github_user on github_connections (github_user_id);
create index github_connections_recheck on github_connections (recheck_after) where revoked_at is null;

-- What each connected user can access through each installation, as GitHub said at the last check.
create table github_user_repo_access (
    user_id          uuid   not null references github_connections (user_id) on delete cascade,
    installation_id  bigint not null references github_app_installations (id) on delete cascade,
    repo_id          bigint not null,                  -- GitHub's repository id
    full_name        text   not null,
    primary key (user_id, installation_id, repo_id)
);
create index github_user_repo_access_repo on github_user_repo_access (installation_id, repo_id);

-- The connect flow: a state is good for one callback, whose result waits here for the user's confirmation.
create table github_app_connect_states (
    nonce              text primary key,
    user_id            uuid        not null references users (id) on delete cascade,
    created_at         timestamptz not null default now(),
    called_back_at     timestamptz,
    pending_protected  text,                       -- the GitHub account and tokens, until confirmed
    confirm_hash       bytea,                      -- SHA-256 of the confirmation token only the callback page holds
    confirmed_at       timestamptz
);

-- App-level events (installation, installation_repositories, github_app_authorization, organization) applied once
-- each, by delivery guid: a replay or a redelivery of one is answered "duplicate" and changes nothing.
create table github_app_deliveries (
    delivery_id  text primary key,
    received_at  timestamptz not null default now()
);

-- Failed app deliveries the Worker asked GitHub to send again, by delivery guid: how often, and the failed attempt
-- (GitHub's delivery id, which grows with every attempt) the last request was about.
create table github_app_redeliveries (
    guid          text primary key,
    attempts      int         not null default 1,
    delivery_id   bigint      not null,
    requested_at  timestamptz not null default now()
);

-- Small bits of state the Worker keeps between runs (where it last looked at the app's deliveries).
create table github_app_state (
    key    text primary key,
    value  text not null
);

-- A tracked repo is delivered either by its own webhook (with a secret) or by the app (with GitHub's repository id).
alter table tracked_repos add column source text not null default 'webhook';
alter table tracked_repos add column github_repo_id bigint;
alter table tracked_repos alter column webhook_secret_protected drop not null;
alter table tracked_repos add constraint tracked_repos_source check (
    (source = 'webhook' and webhook_secret_protected is not null and github_repo_id is null)
    or (source = 'app' and webhook_secret_protected is null and github_repo_id is not null));
create index tracked_repos_app_repo on tracked_repos (github_repo_id) where source = 'app';
