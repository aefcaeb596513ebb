-- GitHub App mode, issue 24: the access rule with each person's role, and re-checks that cannot undo a removal.
-- The rule itself is C#: CoTeX.Shared/GitHubApp/GitHubAccessQueries.cs.

-- The user's role on the repository as GitHub answered for their token (its `permissions`): 1 read, 2 triage,
-- 3 write, 4 maintain, 5 admin (RepoRole). Rows from before this column were read-only until their next re-check.
alter table github_user_repo_access add column role smallint not null default 1 check (role between 1 and 5);

-- Every change that can narrow access (an app event, the Worker's installation check) adds one here, before it
-- changes anything, in its own transaction. A re-check reads it before asking GitHub and saves its answer only if it
-- is unchanged (holding it share-locked while it saves): an answer GitHub gave before a removal never undoes it.
create table github_access_epoch (
    singleton  boolean primary key default true check (singleton),
    epoch      bigint  not null default 0
);
insert into github_access_epoch default values;

-- One re-check of a connection at a time, across every process, without holding a database connection while GitHub
-- answers: a re-check takes the lease (until this time), and the next one waits for it to be returned or to lapse.
alter table github_connections add column recheck_lease_until timestamptz;
-- When the user last asked for a re-check (POST /api/github-app/recheck): the cooldown counts from it.
alter table github_connections add column requested_recheck_at timestamptz;
