-- Tenants under row-level security. Every table in `public` is served by
-- Supabase's REST API, so isolation is enforced here, by Postgres, not only by
-- the engine: RLS enabled and forced on every table, policies written against
-- auth.uid() and membership, API roles own nothing and get only the
-- privileges their policies need. Billing tables (another issue) attach to
-- organizations(id).

create table public.organizations (
  id           uuid primary key default gen_random_uuid(),
  name         text not null check (length(name) between 1 and 200),
  personal_for uuid unique,            -- the user whose personal organisation this is
  created_at   timestamptz not null default now()
);

create table public.org_members (
  org_id      uuid not null references public.organizations(id) on delete cascade,
  user_id     uuid not null,
  role        text not null check (role in ('owner', 'admin', 'member')),
  seat_active boolean not null default true,
  invited_at  timestamptz,
  joined_at   timestamptz default now(),
  removed_at  timestamptz,
  primary key (org_id, user_id)
);
create index org_members_user on public.org_members (user_id);

create table public.projects (
  org_id     uuid not null references public.organizations(id) on delete cascade,
  id         text not null check (length(id) between 1 and 200),  -- session.start.project_id
  created_by uuid not null,
  created_at timestamptz not null default now(),
  primary key (org_id, id)
);

create table public.threads (
  id         text primary key check (length(id) between 1 and 200),
  org_id     uuid not null,
  project_id text not null,
  owner_id   uuid not null,
  created_at timestamptz not null default now(),
  foreign key (org_id, project_id) references public.projects (org_id, id) on delete cascade
);
create index threads_owner on public.threads (owner_id);

create table public.turns (
  id          bigint generated always as identity primary key,
  org_id      uuid not null references public.organizations(id) on delete cascade,
  thread_id   text not null references public.threads(id) on delete cascade,
  user_id     uuid not null,
  session_id  text not null,
  turn_id     text not null,
  response_id text not null,
  transcript  text not null,
  reply       text not null,
  interrupted boolean not null default false,
  heard_text  text,
  model       text,
  timings     jsonb not null default '{}'::jsonb,
  created_at  timestamptz not null default now()
);
create index turns_thread on public.turns (thread_id, id);

-- one row per MCP request: what was asked and what came of it, never file
-- contents or command output (sizes and SHA-256 hashes of them only)
create table public.tool_actions (
  id             bigint generated always as identity primary key,
  org_id         uuid not null references public.organizations(id) on delete cascade,
  thread_id      text not null references public.threads(id) on delete cascade,
  user_id        uuid not null,
  turn_id        text not null,
  request_id     text not null,
  action         text not null,
  decision       text not null check (decision in ('auto', 'approved', 'rejected', 'unanswered')),
  status         text not null,
  error_code     text,
  payload_bytes  integer not null,
  payload_sha256 text not null,
  result_bytes   integer,
  result_sha256  text,
  created_at     timestamptz not null default now()
);
create index tool_actions_thread on public.tool_actions (thread_id, id);

-- append-only and hash-chained per organisation (see public.audit_append)
create table public.audit_events (
  org_id    uuid not null references public.organizations(id),
  seq       bigint not null,
  at        timestamptz not null,
  actor     uuid,
  kind      text not null,
  subject   text,
  detail    jsonb not null default '{}'::jsonb,
  prev_hash text not null,
  hash      text not null,
  primary key (org_id, seq)
);

-- the chain of events that belong to no tenant (a token that did not verify)
insert into public.organizations (id, name)
values ('00000000-0000-0000-0000-000000000000', 'system') on conflict do nothing;

-- ------------------------------------------------------------ membership helpers
-- SECURITY DEFINER so policies on org_members can ask about org_members
-- without recursing into their own policy; they reveal only the caller's own
-- membership.

create function public.is_member(p_org uuid) returns boolean
language sql stable security definer set search_path = pg_catalog, public as $$
  select exists (select 1 from public.org_members m
                 where m.org_id = p_org and m.user_id = auth.uid()
                   and m.removed_at is null and m.seat_active)
$$;

create function public.org_role(p_org uuid) returns text
language sql stable security definer set search_path = pg_catalog, public as $$
  select m.role from public.org_members m
  where m.org_id = p_org and m.user_id = auth.uid() and m.removed_at is null and m.seat_active
$$;

-- a project-scoped token (claim project_id) sees only that project's rows
create function public.in_token_project(p_project text) returns boolean
language sql stable as $$
  select coalesce(auth.jwt() ->> 'project_id', p_project) = p_project
$$;

-- ------------------------------------------------------------------ audit chain

create function public.audit_payload(
  p_prev text, p_org uuid, p_seq bigint, p_at timestamptz, p_actor uuid,
  p_kind text, p_subject text, p_detail jsonb
) returns text language sql immutable as $$
  select concat_ws('|', p_prev, p_org::text, p_seq::text,
                   to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   coalesce(p_actor::text, ''), p_kind, coalesce(p_subject, ''), p_detail::text)
$$;

-- The only way to add an audit row. Writers of one organisation are
-- serialised by a transaction-scoped advisory lock on that organisation (no
-- global lock); the lock is held until the caller's transaction ends, so the
-- row and the change it records commit together or not at all.
create function public.audit_append(p_org uuid, p_kind text, p_subject text, p_detail jsonb)
returns bigint
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_prev text; v_seq bigint; v_at timestamptz := clock_timestamp(); v_actor uuid := auth.uid();
  v_detail jsonb := coalesce(p_detail, '{}'::jsonb);
begin
  if auth.role() is distinct from 'service_role' and not public.is_member(p_org) then
    raise exception 'not a member of organisation %', p_org using errcode = '42501';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('voco.audit:' || p_org::text, 0));
  select e.seq, e.hash into v_seq, v_prev from public.audit_events e
   where e.org_id = p_org order by e.seq desc limit 1;
  v_seq := coalesce(v_seq, 0) + 1;
  v_prev := coalesce(v_prev, repeat('0', 64));
  insert into public.audit_events (org_id, seq, at, actor, kind, subject, detail, prev_hash, hash)
  values (p_org, v_seq, v_at, v_actor, p_kind, p_subject, v_detail, v_prev,
          encode(sha256(convert_to(public.audit_payload(
            v_prev, p_org, v_seq, v_at, v_actor, p_kind, p_subject, v_detail), 'UTF8')), 'hex'));
  return v_seq;
end
$$;

create function public.audit_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit_events is append-only (% refused)', tg_op using errcode = '42501';
end
$$;
create trigger audit_events_append_only before update or delete on public.audit_events
  for each row execute function public.audit_refuse_change();
create trigger audit_events_no_truncate before truncate on public.audit_events
  for each statement execute function public.audit_refuse_change();

-- ------------------------------------------------------------- RLS everywhere

alter table public.organizations enable row level security;
alter table public.organizations force row level security;
alter table public.org_members   enable row level security;
alter table public.org_members   force row level security;
alter table public.projects      enable row level security;
alter table public.projects      force row level security;
alter table public.threads       enable row level security;
alter table public.threads       force row level security;
alter table public.turns         enable row level security;
alter table public.turns         force row level security;
alter table public.tool_actions  enable row level security;
alter table public.tool_actions  force row level security;
alter table public.audit_events  enable row level security;
alter table public.audit_events  force row level security;

-- organisations: members see theirs; a user may create only its personal one
create policy org_read on public.organizations for select to authenticated
  using (public.is_member(id) or personal_for = auth.uid());
create policy org_personal on public.organizations for insert to authenticated
  with check (personal_for = auth.uid());

-- members: co-members see each other; owners/admins manage; the first owner
-- row of one's own personal organisation is the only self-service insert
create policy members_read on public.org_members for select to authenticated
  using (public.is_member(org_id) or user_id = auth.uid());
create policy members_add on public.org_members for insert to authenticated
  with check (
    public.org_role(org_id) in ('owner', 'admin') and (role <> 'owner' or public.org_role(org_id) = 'owner')
    or (user_id = auth.uid() and role = 'owner'
        and exists (select 1 from public.organizations o where o.id = org_id and o.personal_for = auth.uid())
        and not exists (select 1 from public.org_members m where m.org_id = org_members.org_id)));
create policy members_change on public.org_members for update to authenticated
  using (public.org_role(org_id) in ('owner', 'admin') and (role <> 'owner' or public.org_role(org_id) = 'owner'))
  with check (public.org_role(org_id) in ('owner', 'admin') and (role <> 'owner' or public.org_role(org_id) = 'owner'));
create policy members_remove on public.org_members for delete to authenticated
  using (public.org_role(org_id) in ('owner', 'admin') and (role <> 'owner' or public.org_role(org_id) = 'owner'));

-- projects: members see them; owners/admins create them
create policy projects_read on public.projects for select to authenticated
  using (public.is_member(org_id) and public.in_token_project(id));
create policy projects_create on public.projects for insert to authenticated
  with check (public.org_role(org_id) in ('owner', 'admin') and created_by = auth.uid()
              and public.in_token_project(id));

-- threads, turns, tool actions: a conversation is its owner's, inside an
-- organisation the owner still belongs to, and inside the token's project
create policy threads_own on public.threads for select to authenticated
  using (owner_id = auth.uid() and public.is_member(org_id) and public.in_token_project(project_id));
create policy threads_create on public.threads for insert to authenticated
  with check (owner_id = auth.uid() and public.is_member(org_id) and public.in_token_project(project_id));

create policy turns_own on public.turns for select to authenticated
  using (user_id = auth.uid() and public.is_member(org_id));
create policy turns_write on public.turns for insert to authenticated
  with check (user_id = auth.uid() and public.is_member(org_id)
              and exists (select 1 from public.threads t
                          where t.id = thread_id and t.org_id = turns.org_id and t.owner_id = auth.uid()));

create policy tool_actions_own on public.tool_actions for select to authenticated
  using (user_id = auth.uid() and public.is_member(org_id));
create policy tool_actions_write on public.tool_actions for insert to authenticated
  with check (user_id = auth.uid() and public.is_member(org_id)
              and exists (select 1 from public.threads t
                          where t.id = thread_id and t.org_id = tool_actions.org_id
                            and t.owner_id = auth.uid()));

-- audit: owners/admins read their organisation's trail, members their own
-- events; nobody inserts directly (audit_append only), nobody updates or deletes
create policy audit_read on public.audit_events for select to authenticated
  using (public.org_role(org_id) in ('owner', 'admin') or (actor = auth.uid() and public.is_member(org_id)));

-- ------------------------------------------------------------------ privileges
-- Supabase grants everything in public to the API roles by default; take it
-- back and give only what the policies above are written for.

revoke all on public.organizations, public.org_members, public.projects, public.threads,
  public.turns, public.tool_actions, public.audit_events from anon, authenticated, public;
grant select, insert on public.organizations to authenticated;
grant select, insert, update, delete on public.org_members to authenticated;
grant select, insert on public.projects, public.threads to authenticated;
grant select, insert on public.turns, public.tool_actions to authenticated;
grant select on public.audit_events to authenticated;
grant all on public.organizations, public.org_members, public.projects, public.threads,
  public.turns, public.tool_actions, public.audit_events to service_role;
revoke update, delete, truncate on public.audit_events from service_role;

revoke all on function public.audit_append(uuid, text, text, jsonb) from public, anon;
grant execute on function public.audit_append(uuid, text, text, jsonb) to authenticated, service_role;
revoke all on function public.is_member(uuid), public.org_role(uuid) from public, anon;
grant execute on function public.is_member(uuid), public.org_role(uuid) to authenticated, service_role;
