-- Organisation administration and audit retention.
--
-- * Organisations a user creates (not only the personal one): the creator
--   may insert the organisation and then, while it has no members at all,
--   its first owner row (itself); afterwards only owners/admins manage
--   members (the policies of the tenants migration). Supabase clients going
--   through PostgREST get exactly the same rules as Voco's admin API.
-- * Every organisation keeps at least one active owner: a trigger, so no
--   client (API, PostgREST, a buggy engine) can remove or demote the last one.
-- * Retention: organizations.audit_retention_days (default 365) and
--   public.audit_purge(org), the only path on which the append-only trigger
--   lets an audit row be deleted (see there).

alter table public.organizations add column if not exists created_by uuid;
alter table public.organizations add column if not exists audit_retention_days integer
  not null default 365 check (audit_retention_days between 1 and 36500);

-- SECURITY DEFINER: the answer must not depend on which member rows the
-- caller may see (a non-member sees none and would think "no members yet")
create function public.org_has_members(p_org uuid) returns boolean
language sql stable security definer set search_path = pg_catalog, public as $$
  select exists (select 1 from public.org_members m where m.org_id = p_org)
$$;
revoke all on function public.org_has_members(uuid) from public, anon;
grant execute on function public.org_has_members(uuid) to authenticated, service_role;

-- creators see their new organisation until it has members (RETURNING of
-- the insert needs it); after that, membership decides as before
drop policy org_read on public.organizations;
create policy org_read on public.organizations for select to authenticated
  using (public.is_member(id) or personal_for = auth.uid()
         or (created_by = auth.uid() and not public.org_has_members(id)));
create policy org_create on public.organizations for insert to authenticated
  with check (created_by = auth.uid() and personal_for is null);
-- owners rename it or change its retention
create policy org_update on public.organizations for update to authenticated
  using (public.org_role(id) = 'owner') with check (public.org_role(id) = 'owner');
grant update (name, audit_retention_days) on public.organizations to authenticated;

drop policy members_add on public.org_members;
create policy members_add on public.org_members for insert to authenticated
  with check (
    public.org_role(org_id) in ('owner', 'admin') and (role <> 'owner' or public.org_role(org_id) = 'owner')
    or (user_id = auth.uid() and role = 'owner'
        and exists (select 1 from public.organizations o where o.id = org_id
                    and (o.personal_for = auth.uid() or o.created_by = auth.uid()))
        and not public.org_has_members(org_id)));

-- ------------------------------------------------------------- last owner

create function public.keep_an_owner() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  if old.role = 'owner' and old.removed_at is null and old.seat_active
     and (tg_op = 'DELETE' or new.role <> 'owner' or new.removed_at is not null
          or not new.seat_active or new.org_id <> old.org_id) then
    -- the organisation itself is being deleted (cascade): nothing to keep
    if not exists (select 1 from public.organizations o where o.id = old.org_id) then
      return old;
    end if;
    -- two owners demoting each other at once: the second waits for the
    -- first to commit and then sees it (read committed: a fresh snapshot)
    perform pg_advisory_xact_lock(hashtextextended('voco.owners:' || old.org_id::text, 0));
    if not exists (select 1 from public.org_members m
                   where m.org_id = old.org_id and m.user_id <> old.user_id and m.role = 'owner'
                     and m.removed_at is null and m.seat_active) then
      raise exception 'organisation % must keep at least one owner', old.org_id
        using errcode = '23514', hint = 'make another member owner first';
    end if;
  end if;
  if tg_op = 'DELETE' then
    return old;
  end if;
  return new;
end
$$;
create trigger org_members_keep_an_owner before update or delete on public.org_members
  for each row execute function public.keep_an_owner();

-- ---------------------------------------------------------------- retention

-- The chain append itself, without the membership check of audit_append:
-- for code that runs as the table owner (audit_purge). Not callable by any
-- API role.
create function public.audit_write(p_org uuid, p_kind text, p_subject text, p_detail jsonb)
returns bigint
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_prev text; v_seq bigint; v_at timestamptz := clock_timestamp(); v_actor uuid := auth.uid();
  v_detail jsonb := coalesce(p_detail, '{}'::jsonb);
begin
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
revoke all on function public.audit_write(uuid, text, text, jsonb) from public, anon, authenticated, service_role;

-- Deleting audit rows: the append-only trigger refuses every UPDATE, and
-- every DELETE except one made by the table's owner while the
-- transaction-local setting voco.audit_purge names that organisation and a
-- sequence number the row does not exceed. Only public.audit_purge sets it
-- (API roles have no DELETE privilege at all, so for them the setting is
-- moot; an owner or superuser could drop the trigger anyway, which the chain
-- verifier would then catch).
create or replace function public.audit_refuse_change() returns trigger
language plpgsql as $$
declare v_purge text := coalesce(current_setting('voco.audit_purge', true), '');
begin
  if tg_op = 'DELETE' and v_purge <> ''
     and split_part(v_purge, ':', 1) = old.org_id::text
     and old.seq <= split_part(v_purge, ':', 2)::bigint
     and current_user = (select c.relowner::regrole::name from pg_class c where c.oid = tg_relid) then
    return old;
  end if;
  raise exception 'audit_events is append-only (% refused)', tg_op using errcode = '42501';
end
$$;

-- Purge one organisation's audit rows older than its retention. The rows go
-- as a prefix of the chain (sequence 1..N, or from where the last purge left
-- off); first a `retention.checkpoint` event is appended that names the
-- purged range and carries the hash of row N, so the verifier can check that
-- the remaining chain starts exactly where the purge ended and links to it.
-- The checkpoint is itself a chain row: editing it breaks the chain.
-- Returns the checkpoint's detail, or null when nothing was old enough.
create function public.audit_purge(p_org uuid, p_now timestamptz default now())
returns jsonb
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_days integer; v_cut timestamptz; v_first bigint; v_last bigint; v_hash text; v_detail jsonb;
begin
  select o.audit_retention_days into v_days from public.organizations o where o.id = p_org;
  if not found then
    raise exception 'no organisation %', p_org using errcode = '22023';
  end if;
  v_cut := p_now - make_interval(days => v_days);
  perform pg_advisory_xact_lock(hashtextextended('voco.audit:' || p_org::text, 0));
  select min(e.seq), max(e.seq) filter (where e.at < v_cut) into v_first, v_last
    from public.audit_events e where e.org_id = p_org;
  if v_last is null then
    return null;
  end if;
  select e.hash into v_hash from public.audit_events e where e.org_id = p_org and e.seq = v_last;
  v_detail := jsonb_build_object(
    'purged_from', v_first, 'purged_to', v_last, 'last_hash', v_hash,
    'before', to_char(v_cut at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'retention_days', v_days);
  perform public.audit_write(p_org, 'retention.checkpoint', null, v_detail);
  perform set_config('voco.audit_purge', p_org::text || ':' || v_last::text, true);
  delete from public.audit_events e where e.org_id = p_org and e.seq <= v_last;
  perform set_config('voco.audit_purge', '', true);
  return v_detail;
end
$$;
revoke all on function public.audit_purge(uuid, timestamptz) from public, anon, authenticated, service_role;
