-- GitHub App mode, issue 24: the access rule with each person's role, and re-checks that cannot undo a removal.
-- The rule itself is C#: CoTeX.Shared/GitHubApp/GitHubAccessQueries.cs.

-- The user's role on the repository as GitHub answered for their token (its `permissions`): 1 read, 2 triage,
-- 3 write, 4 maintain, 5 admin (RepoRole). Rows from before this column are read-only until their next re-check.
alter table github_user_repo_access add column role smallint not null default 1 check (role between 1 and 5);

-- Narrowings: every change that can take access away (an app event, the Worker's installation check) stamps what it
-- narrows (an installation, or a GitHub user's connections) with the next number of this sequence, first thing in
-- its transaction. A re-check reads the sequence before it asks GitHub; when it saves, whatever was stamped since is
-- newer than GitHub's answer, so from there it takes only what narrows (rows gone, lower roles), never what widens.
create sequence github_access_narrowings;
alter table github_app_installations add column narrowed_at bigint not null default 0;
alter table github_connections add column narrowed_at bigint not null default 0;

-- One re-check of a connection at a time, across every process, without holding a database connection while GitHub
-- answers: a re-check takes the lease (until this time), and the next one waits for it to be returned or to lapse.
alter table github_connections add column recheck_lease_until timestamptz;
-- When the user last asked for a re-check (POST /api/github-app/recheck): the cooldown counts from it.
alter table github_connections add column requested_recheck_at timestamptz;
-- Which Data Protection purpose protects the tokens: 1 the first one (any user's), 2 one that names the user. Rows
-- of 1 are read as such until their next save writes 2; a 1 blob copied into a row of 2 is never read.
alter table github_connections add column token_purpose smallint not null default 1 check (token_purpose in (1, 2));

-- An anonymous session can no longer connect GitHub: connections made by one before are revoked.
update github_connections c
   set revoked_at = now(), token_protected = null, refresh_token_protected = null, token_expires_at = null
  from users u
 where u.id = c.user_id and u.is_anonymous and c.revoked_at is null;
delete from github_user_repo_access a using users u where u.id = a.user_id and u.is_anonymous;

-- A user tracks a GitHub repository through the app once, whatever it is called now (GitHub renames keep the id).
create unique index tracked_repos_app_repo_once on tracked_repos (user_id, github_repo_id) where source = 'app';
