-- The schema of a freshly migrated CoTeX database: the versioned scripts in Data/Migrations, then the functions in
-- Data/Functions. Generated (pg_dump --schema-only --no-owner --no-privileges, without comments and settings, and
-- without the daily partitions github_events_pYYYYMMDD and github_event_payloads_pYYYYMMDD, which depend on the
-- day): do not edit. After changing a migration or a function, regenerate it and commit it with the change:
--   COTEX_WRITE_SCHEMA=1 dotnet test --project CoTeX.Tests -- --filter-class CoTeX.Tests.Foundation.SchemaTests
-- CoTeX.Tests/Foundation/SchemaTests.cs fails while it differs from a migrated database.

CREATE FUNCTION public.ensure_github_event_partitions(first_day date, last_day date, parent text DEFAULT 'github_events'::text) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.ingest_github_event(p_repo_id uuid, p_user_id uuid, p_delivery_id text, p_event_type text, p_action text, p_sender text, p_title text, p_html_url text, p_payload jsonb) RETURNS TABLE(o_outcome text, o_id bigint, o_position bigint, o_received_at timestamp with time zone, o_paused boolean)
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.ingest_github_events(p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[], p_senders text[], p_titles text[], p_html_urls text[], p_payloads bytea[]) RETURNS TABLE(o_outcome text, o_id bigint, o_position bigint, o_received_at timestamp with time zone, o_paused boolean)
    LANGUAGE sql
    AS $$
    select * from ingest_github_events(p_repo_ids, p_user_ids, p_delivery_ids, p_event_types, p_actions, p_senders,
        p_titles, p_html_urls, array(select generate_series(1, cardinality(p_payloads))), p_payloads)
$$;

CREATE FUNCTION public.ingest_github_events(p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[], p_senders text[], p_titles text[], p_html_urls text[], p_payloads jsonb[]) RETURNS TABLE(o_outcome text, o_id bigint, o_position bigint, o_received_at timestamp with time zone, o_paused boolean)
    LANGUAGE sql
    AS $$
    select * from ingest_github_events(p_repo_ids, p_user_ids, p_delivery_ids, p_event_types, p_actions, p_senders,
        p_titles, p_html_urls,
        array(select convert_to(p::text, 'UTF8') from unnest(p_payloads) with ordinality as u (p, i) order by i))
$$;

CREATE FUNCTION public.ingest_github_events(p_repo_ids uuid[], p_user_ids uuid[], p_delivery_ids text[], p_event_types text[], p_actions text[], p_senders text[], p_titles text[], p_html_urls text[], p_payload_refs integer[], p_payloads bytea[]) RETURNS TABLE(o_outcome text, o_id bigint, o_position bigint, o_received_at timestamp with time zone, o_paused boolean)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
    v_received_at timestamptz := now();
begin
    -- Lock order as everywhere else: the user rows first (sorted, so two batches cannot deadlock), then their repos.
    perform 1 from users where id in (select distinct unnest(p_user_ids)) order by id for no key update;

    return query
    with input as (
        select *
          from unnest(p_repo_ids, p_user_ids, p_delivery_ids, p_event_types, p_actions, p_senders, p_titles, p_html_urls, p_payload_refs)
               with ordinality as i (repo_id, user_id, delivery_id, event_type, action, sender, title, html_url, payload_ref, ord)
    ),
    live as (        -- the batch's repos that still exist for their user, stamped with this delivery time
        update tracked_repos r
           set last_delivery_at = v_received_at,
               last_ping_at = case when d.pinged then v_received_at else r.last_ping_at end
          from (select repo_id, user_id, bool_or(event_type = 'ping') as pinged from input group by repo_id, user_id) d
         where r.id = d.repo_id and r.user_id = d.user_id
     returning r.id as repo_id, r.user_id, r.paused
    ),
    firsts as (      -- the first of each delivery id within the batch, for live repos
        select distinct on (i.repo_id, i.delivery_id) i.*
          from input i join live l using (repo_id, user_id)
         order by i.repo_id, i.delivery_id, i.ord
    ),
    fresh as (       -- the ones not seen before
        insert into github_deliveries (repo_id, delivery_id, received_at)
        select repo_id, delivery_id, v_received_at from firsts order by ord
        on conflict (repo_id, delivery_id) do nothing
        returning repo_id, delivery_id
    ),
    numbered as (
        select f.*, row_number() over (partition by f.user_id order by f.ord) as n
          from firsts f join fresh using (repo_id, delivery_id)
    ),
    bumped as (      -- each user's position counter moves past the new events at once
        update users u
           set last_event_seq = u.last_event_seq + c.total
          from (select user_id, count(*) as total from numbered group by user_id) c
         where u.id = c.user_id
     returning u.id as user_id, u.last_event_seq - c.total as base
    ),
    shared as (      -- the payloads stored for more than one event, each with the id of its one row
        select payload_ref, nextval('github_event_payload_ids') as payload_id, count(*)::int as refs
          from numbered
         group by payload_ref
        having count(*) > 1
    ),
    shared_stored as (
        insert into github_event_payloads (id, received_at, body, refs)
        select s.payload_id, v_received_at, p_payloads[s.payload_ref], s.refs from shared s
    ),
    stored as (
        insert into github_events (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, body, payload_id, received_at)
        select n.repo_id, n.user_id, b.base + n.n, n.delivery_id, n.event_type, n.action, n.sender, n.title, n.html_url,
               case when s.payload_id is null then p_payloads[n.payload_ref] end, s.payload_id, v_received_at
          from numbered n join bumped b using (user_id) left join shared s using (payload_ref)
         order by n.ord
     returning id, seq, repo_id, delivery_id
    )
    select case when l.repo_id is null then 'repo_gone' when s.id is null then 'duplicate' else 'stored' end,
           s.id, s.seq, case when s.id is not null then v_received_at end, l.paused
      from input i
      left join live l using (repo_id, user_id)
      left join numbered n on n.ord = i.ord
      left join stored s on s.repo_id = n.repo_id and s.delivery_id = n.delivery_id
     order by i.ord;
end
$$;

CREATE FUNCTION public.release_github_event_payloads() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE TABLE public.data_protection_keys (
    friendly_name text NOT NULL,
    xml text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.github_access_narrowings
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE public.github_app_connect_states (
    nonce text NOT NULL,
    user_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    called_back_at timestamp with time zone,
    pending_protected text,
    confirm_hash bytea,
    confirmed_at timestamp with time zone
);

CREATE TABLE public.github_app_deliveries (
    delivery_id text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.github_app_installations (
    id bigint NOT NULL,
    account_login text NOT NULL,
    account_type text NOT NULL,
    suspended_at timestamp with time zone,
    deleted_at timestamp with time zone,
    github_updated_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    narrowed_at bigint DEFAULT 0 NOT NULL
);

CREATE TABLE public.github_app_redeliveries (
    guid text NOT NULL,
    attempts integer DEFAULT 1 NOT NULL,
    delivery_id bigint NOT NULL,
    requested_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.github_app_state (
    key text NOT NULL,
    value text NOT NULL
);

CREATE TABLE public.github_connections (
    user_id uuid NOT NULL,
    github_user_id bigint NOT NULL,
    github_login text NOT NULL,
    token_protected text,
    refresh_token_protected text,
    token_expires_at timestamp with time zone,
    connected_at timestamp with time zone DEFAULT now() NOT NULL,
    checked_at timestamp with time zone DEFAULT now() NOT NULL,
    recheck_after timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    narrowed_at bigint DEFAULT 0 NOT NULL,
    recheck_lease_until timestamp with time zone,
    requested_recheck_at timestamp with time zone,
    token_purpose smallint DEFAULT 1 NOT NULL,
    CONSTRAINT github_connections_token_purpose_check CHECK ((token_purpose = ANY (ARRAY[1, 2])))
);

CREATE TABLE public.github_deliveries (
    repo_id uuid NOT NULL,
    delivery_id text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.github_event_ids
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE SEQUENCE public.github_event_payload_ids
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE public.github_event_payloads (
    id bigint DEFAULT nextval('public.github_event_payload_ids'::regclass) NOT NULL,
    received_at timestamp with time zone NOT NULL,
    body bytea NOT NULL,
    refs integer NOT NULL,
    CONSTRAINT github_event_payloads_refs_check CHECK ((refs > 0))
)
PARTITION BY RANGE (received_at);
ALTER TABLE ONLY public.github_event_payloads ALTER COLUMN body SET COMPRESSION lz4;

CREATE TABLE public.github_event_payloads_default (
    id bigint DEFAULT nextval('public.github_event_payload_ids'::regclass) NOT NULL,
    received_at timestamp with time zone NOT NULL,
    body bytea NOT NULL,
    refs integer NOT NULL,
    CONSTRAINT github_event_payloads_refs_check CHECK ((refs > 0))
);
ALTER TABLE ONLY public.github_event_payloads_default ALTER COLUMN body SET COMPRESSION lz4;

CREATE TABLE public.github_events (
    id bigint DEFAULT nextval('public.github_event_ids'::regclass) NOT NULL,
    repo_id uuid NOT NULL,
    user_id uuid NOT NULL,
    seq bigint NOT NULL,
    delivery_id text NOT NULL,
    event_type text NOT NULL,
    action text,
    sender text,
    title text,
    html_url text,
    payload jsonb,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    body bytea,
    payload_id bigint
)
PARTITION BY RANGE (received_at);
ALTER TABLE ONLY public.github_events ALTER COLUMN payload SET COMPRESSION lz4;
ALTER TABLE ONLY public.github_events ALTER COLUMN body SET COMPRESSION lz4;

CREATE TABLE public.github_events_default (
    id bigint DEFAULT nextval('public.github_event_ids'::regclass) NOT NULL,
    repo_id uuid NOT NULL,
    user_id uuid NOT NULL,
    seq bigint NOT NULL,
    delivery_id text NOT NULL,
    event_type text NOT NULL,
    action text,
    sender text,
    title text,
    html_url text,
    payload jsonb,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    body bytea,
    payload_id bigint
);
ALTER TABLE ONLY public.github_events_default ALTER COLUMN payload SET COMPRESSION lz4;
ALTER TABLE ONLY public.github_events_default ALTER COLUMN body SET COMPRESSION lz4;

CREATE TABLE public.github_user_repo_access (
    user_id uuid NOT NULL,
    installation_id bigint NOT NULL,
    repo_id bigint NOT NULL,
    full_name text NOT NULL,
    role smallint DEFAULT 1 NOT NULL,
    CONSTRAINT github_user_repo_access_role_check CHECK (((role >= 1) AND (role <= 5)))
);

CREATE TABLE public.schemaversions (
    schemaversionsid integer NOT NULL,
    scriptname character varying(255) NOT NULL,
    applied timestamp without time zone NOT NULL
);

CREATE SEQUENCE public.schemaversions_schemaversionsid_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.schemaversions_schemaversionsid_seq OWNED BY public.schemaversions.schemaversionsid;

CREATE TABLE public.stripe_events (
    id text NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text
);

CREATE TABLE public.subscriptions (
    user_id uuid NOT NULL,
    plan text DEFAULT 'free'::text NOT NULL,
    stripe_customer_id text,
    stripe_subscription_id text,
    status text,
    current_period_end timestamp with time zone,
    payment_problem boolean DEFAULT false NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT subscriptions_plan_check CHECK ((plan = ANY (ARRAY['free'::text, 'pro'::text])))
);

CREATE TABLE public.tracked_repos (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    full_name text NOT NULL,
    webhook_secret_protected text,
    paused boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_delivery_at timestamp with time zone,
    last_ping_at timestamp with time zone,
    source text DEFAULT 'webhook'::text NOT NULL,
    github_repo_id bigint,
    CONSTRAINT tracked_repos_source CHECK ((((source = 'webhook'::text) AND (webhook_secret_protected IS NOT NULL) AND (github_repo_id IS NULL)) OR ((source = 'app'::text) AND (webhook_secret_protected IS NULL) AND (github_repo_id IS NOT NULL))))
);

CREATE TABLE public.users (
    id uuid NOT NULL,
    email text,
    is_anonymous boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    last_event_seq bigint DEFAULT 0 NOT NULL,
    pruned_through_seq bigint DEFAULT 0 NOT NULL,
    deleted_at timestamp with time zone
);

ALTER TABLE ONLY public.github_event_payloads ATTACH PARTITION public.github_event_payloads_default DEFAULT;

ALTER TABLE ONLY public.github_events ATTACH PARTITION public.github_events_default DEFAULT;

ALTER TABLE ONLY public.schemaversions ALTER COLUMN schemaversionsid SET DEFAULT nextval('public.schemaversions_schemaversionsid_seq'::regclass);

ALTER TABLE ONLY public.schemaversions
    ADD CONSTRAINT "PK_schemaversions_Id" PRIMARY KEY (schemaversionsid);

ALTER TABLE ONLY public.data_protection_keys
    ADD CONSTRAINT data_protection_keys_pkey PRIMARY KEY (friendly_name);

ALTER TABLE ONLY public.github_app_connect_states
    ADD CONSTRAINT github_app_connect_states_pkey PRIMARY KEY (nonce);

ALTER TABLE ONLY public.github_app_deliveries
    ADD CONSTRAINT github_app_deliveries_pkey PRIMARY KEY (delivery_id);

ALTER TABLE ONLY public.github_app_installations
    ADD CONSTRAINT github_app_installations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.github_app_redeliveries
    ADD CONSTRAINT github_app_redeliveries_pkey PRIMARY KEY (guid);

ALTER TABLE ONLY public.github_app_state
    ADD CONSTRAINT github_app_state_pkey PRIMARY KEY (key);

ALTER TABLE ONLY public.github_connections
    ADD CONSTRAINT github_connections_pkey PRIMARY KEY (user_id);

ALTER TABLE ONLY public.github_deliveries
    ADD CONSTRAINT github_deliveries_pkey PRIMARY KEY (repo_id, delivery_id);

ALTER TABLE ONLY public.github_event_payloads
    ADD CONSTRAINT github_event_payloads_pkey PRIMARY KEY (id, received_at);

ALTER TABLE ONLY public.github_event_payloads_default
    ADD CONSTRAINT github_event_payloads_default_pkey PRIMARY KEY (id, received_at);

ALTER TABLE ONLY public.github_events
    ADD CONSTRAINT github_events_partitioned_pkey PRIMARY KEY (id, received_at);

ALTER TABLE ONLY public.github_events_default
    ADD CONSTRAINT github_events_default_pkey PRIMARY KEY (id, received_at);

ALTER TABLE ONLY public.github_user_repo_access
    ADD CONSTRAINT github_user_repo_access_pkey PRIMARY KEY (user_id, installation_id, repo_id);

ALTER TABLE ONLY public.stripe_events
    ADD CONSTRAINT stripe_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (user_id);

ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_stripe_customer_id_key UNIQUE (stripe_customer_id);

ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_stripe_subscription_id_key UNIQUE (stripe_subscription_id);

ALTER TABLE ONLY public.tracked_repos
    ADD CONSTRAINT tracked_repos_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX github_connections_github_user ON public.github_connections USING btree (github_user_id);

CREATE INDEX github_connections_recheck ON public.github_connections USING btree (recheck_after) WHERE (revoked_at IS NULL);

CREATE INDEX github_deliveries_received_at ON public.github_deliveries USING btree (received_at);

CREATE INDEX github_events_repo_id ON ONLY public.github_events USING btree (repo_id, id DESC);

CREATE INDEX github_events_default_repo_id_id_idx ON public.github_events_default USING btree (repo_id, id DESC);

CREATE INDEX github_events_user_id ON ONLY public.github_events USING btree (user_id, id DESC);

CREATE INDEX github_events_default_user_id_id_idx ON public.github_events_default USING btree (user_id, id DESC);

CREATE INDEX github_events_user_seq ON ONLY public.github_events USING btree (user_id, seq);

CREATE INDEX github_events_default_user_id_seq_idx ON public.github_events_default USING btree (user_id, seq);

CREATE INDEX github_user_repo_access_repo ON public.github_user_repo_access USING btree (installation_id, repo_id);

CREATE INDEX stripe_events_unprocessed ON public.stripe_events USING btree (received_at) WHERE (processed_at IS NULL);

CREATE INDEX tracked_repos_app_repo ON public.tracked_repos USING btree (github_repo_id) WHERE (source = 'app'::text);

CREATE UNIQUE INDEX tracked_repos_app_repo_once ON public.tracked_repos USING btree (user_id, github_repo_id) WHERE (source = 'app'::text);

CREATE UNIQUE INDEX tracked_repos_user_full_name ON public.tracked_repos USING btree (user_id, lower(full_name));

ALTER INDEX public.github_event_payloads_pkey ATTACH PARTITION public.github_event_payloads_default_pkey;

ALTER INDEX public.github_events_partitioned_pkey ATTACH PARTITION public.github_events_default_pkey;

ALTER INDEX public.github_events_repo_id ATTACH PARTITION public.github_events_default_repo_id_id_idx;

ALTER INDEX public.github_events_user_id ATTACH PARTITION public.github_events_default_user_id_id_idx;

ALTER INDEX public.github_events_user_seq ATTACH PARTITION public.github_events_default_user_id_seq_idx;

CREATE TRIGGER github_events_release_payloads AFTER DELETE ON public.github_events REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION public.release_github_event_payloads();

ALTER TABLE ONLY public.github_app_connect_states
    ADD CONSTRAINT github_app_connect_states_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.github_connections
    ADD CONSTRAINT github_connections_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.github_deliveries
    ADD CONSTRAINT github_deliveries_repo_id_fkey FOREIGN KEY (repo_id) REFERENCES public.tracked_repos(id) ON DELETE CASCADE;

ALTER TABLE public.github_events
    ADD CONSTRAINT github_events_partitioned_repo_id_fkey FOREIGN KEY (repo_id) REFERENCES public.tracked_repos(id) ON DELETE CASCADE;

ALTER TABLE public.github_events
    ADD CONSTRAINT github_events_partitioned_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.github_user_repo_access
    ADD CONSTRAINT github_user_repo_access_installation_id_fkey FOREIGN KEY (installation_id) REFERENCES public.github_app_installations(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.github_user_repo_access
    ADD CONSTRAINT github_user_repo_access_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.github_connections(user_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.tracked_repos
    ADD CONSTRAINT tracked_repos_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;
