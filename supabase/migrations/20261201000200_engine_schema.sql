-- The engine's own state, in a schema the API roles cannot reach: LangGraph
-- checkpoints hold whole conversations, and on Supabase every table in
-- `public` is served by the REST API. Also the leases that hold the per-user
-- session cap and the one-run-per-thread rule across engine processes.

create schema if not exists engine;
revoke all on schema engine from public, anon, authenticated;

-- checkpoints written before this migration lived in public
do $$
declare t text;
begin
  foreach t in array array['checkpoints', 'checkpoint_blobs', 'checkpoint_writes', 'checkpoint_migrations']
  loop
    if to_regclass('public.' || t) is not null and to_regclass('engine.' || t) is null then
      execute format('alter table public.%I set schema engine', t);
    end if;
  end loop;
end
$$;

-- The previous schema kept ownership in public.voco_threads (user ids as
-- text). Users with UUID ids get a personal organisation, their projects and
-- threads; the table itself leaves the API schema either way.
do $$
begin
  if to_regclass('public.voco_threads') is null then
    return;
  end if;
  create temporary table legacy_users on commit drop as
    select distinct user_id::uuid as user_id from public.voco_threads
    where user_id ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$';
  insert into public.organizations (name, personal_for)
    select 'Personal', u.user_id from legacy_users u
    where not exists (select 1 from public.org_members m where m.user_id = u.user_id)
    on conflict (personal_for) do nothing;
  insert into public.org_members (org_id, user_id, role)
    select o.id, o.personal_for, 'owner' from public.organizations o
    join legacy_users u on u.user_id = o.personal_for
    on conflict do nothing;
  create temporary table legacy_home on commit drop as
    select distinct on (m.user_id) m.user_id, m.org_id from public.org_members m
    join legacy_users u using (user_id) where m.removed_at is null
    order by m.user_id, m.joined_at;
  insert into public.projects (org_id, id, created_by)
    select distinct h.org_id, v.project_id, h.user_id from public.voco_threads v
    join legacy_home h on h.user_id::text = lower(v.user_id) or replace(h.user_id::text, '-', '') = lower(v.user_id)
    on conflict do nothing;
  insert into public.threads (id, org_id, project_id, owner_id, created_at)
    select v.thread_id, h.org_id, v.project_id, h.user_id, v.created_at from public.voco_threads v
    join legacy_home h on h.user_id::text = lower(v.user_id) or replace(h.user_id::text, '-', '') = lower(v.user_id)
    on conflict do nothing;
  alter table public.voco_threads set schema engine;
  alter table engine.voco_threads rename to legacy_voco_threads;
end
$$;

-- one row per live session; expires unless its engine renews it, so a
-- killed engine gives its users' slots back
create table engine.session_leases (
  lease_id   uuid primary key,
  user_id    uuid not null,
  engine_id  text not null,
  expires_at timestamptz not null
);
create index session_leases_user on engine.session_leases (user_id);

-- at most one graph run per thread at a time, across engine processes
create table engine.thread_runs (
  thread_id  text primary key,
  holder     text not null,
  engine_id  text not null,
  expires_at timestamptz not null
);
