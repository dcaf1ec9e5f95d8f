-- Member changes are audited by the database itself, in the same
-- transaction, whoever makes them: the org admin API, PostgREST on Supabase,
-- or SQL as an API role. The API writes no member.* rows of its own (it
-- relies on this trigger), so nothing is audited twice and no client can
-- skip the trail (a "this was audited already" marker would be a setting any
-- SQL caller could set too).
--
-- Kinds: member.added (insert, or a removed member coming back),
-- member.removed (soft removal or delete), member.role_changed, member.seat
-- (seat switched without any of the above). The actor is auth.uid() of the
-- caller (null for the database owner's maintenance, e.g. delete-user).

create function public.audit_member_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_org uuid := coalesce(new.org_id, old.org_id);
  v_user text := coalesce(new.user_id, old.user_id)::text;
begin
  -- an organisation being deleted takes its members with it: nothing to chain to
  if not exists (select 1 from public.organizations o where o.id = v_org) then
    return null;
  end if;
  if tg_op = 'INSERT' then
    perform public.audit_write(v_org, 'member.added', v_user, jsonb_build_object('role', new.role));
  elsif tg_op = 'DELETE' then
    if old.removed_at is null then
      perform public.audit_write(v_org, 'member.removed', v_user,
                                 jsonb_build_object('role', old.role, 'deleted', true));
    end if;
  elsif old.removed_at is not null and new.removed_at is null then
    perform public.audit_write(v_org, 'member.added', v_user, jsonb_build_object('role', new.role));
  elsif old.removed_at is null and new.removed_at is not null then
    perform public.audit_write(v_org, 'member.removed', v_user, jsonb_build_object('role', old.role));
  else
    if new.role is distinct from old.role then
      perform public.audit_write(v_org, 'member.role_changed', v_user,
                                 jsonb_build_object('from', old.role, 'to', new.role));
    end if;
    if new.seat_active is distinct from old.seat_active then
      perform public.audit_write(v_org, 'member.seat', v_user,
                                 jsonb_build_object('active', new.seat_active));
    end if;
  end if;
  return null;
end
$$;
revoke all on function public.audit_member_change() from public, anon, authenticated, service_role;

create trigger org_members_audit after insert or update or delete on public.org_members
  for each row execute function public.audit_member_change();
