-- Membership checks as PL/pgSQL: same answers, a fraction of the cost.
--
-- public.is_member / public.org_role are in almost every policy and in
-- audit_append, so a turn evaluates them a dozen times (the turn row, its
-- thread lookup, each usage row, the audit row). As LANGUAGE sql functions
-- that are SECURITY DEFINER with a SET clause they can never be inlined, and
-- PostgreSQL re-parses and re-plans a non-inlined SQL function's body on
-- every statement that calls it: ~0.15 ms per call site per statement, about
-- 1.5 ms of a turn's write. PL/pgSQL keeps the body's plan for the session
-- (a generic plan after a few executions), ~0.02 ms a call. The query, the
-- security definer, the search_path and the grants are unchanged; CREATE OR
-- REPLACE keeps the function's identity, so the policies that use it need no
-- change.

create or replace function public.is_member(p_org uuid) returns boolean
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return exists (select 1 from public.org_members m
                 where m.org_id = p_org and m.user_id = auth.uid()
                   and m.removed_at is null and m.seat_active);
end
$$;

create or replace function public.org_role(p_org uuid) returns text
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return (select m.role from public.org_members m
          where m.org_id = p_org and m.user_id = auth.uid()
            and m.removed_at is null and m.seat_active);
end
$$;
