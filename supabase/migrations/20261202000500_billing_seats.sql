-- Automatic seats, enforced and queued by the database itself, in the
-- transaction of the membership change, whoever makes it (the org admin API,
-- PostgREST on Supabase, SQL as an API role):
--
-- * a seat is a member row with seat_active and no removed_at; taking one
--   (add, reactivate, seat switched on) on a fixed-seat plan
--   (billing_customers.fixed_seats) beyond its seats is refused with SQLSTATE
--   VS409 and a message that says why and what to do (the API answers 409);
-- * every seat change bumps seat_sync.version (the idempotency key of the
--   Stripe quantity update includes it, so 3 → 4 → 3 is never a replay);
-- * for an org linked to a Stripe customer, the sync job is queued in the same
--   transaction (a transactional outbox: no change is left without its job,
--   no job runs for a change that rolled back). The job is debounced: it is
--   scheduled `voco.seat_debounce_s` seconds ahead (default 10) under the
--   queueing lock `seats:<org>`, so a burst of changes while it waits is one
--   job that reads the latest count when it runs; `lock` keeps two syncs of
--   one org from running at once. The job queue is procrastinate, in schema
--   `jobs` (voco.store.job_schema); without it (an engine that never ran the
--   job migrator) nothing is queued and the periodic drift check repairs.
--
-- Two admins taking the last seat at once: the per-org advisory lock orders
-- them and the second counts after the first commits (read committed, fresh
-- snapshot per statement).

create function public.org_member_seats() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, jobs as $$
declare
  v_org uuid := coalesce(new.org_id, old.org_id);
  v_before boolean := tg_op <> 'INSERT' and old.seat_active and old.removed_at is null;
  v_after boolean := tg_op <> 'DELETE' and new.seat_active and new.removed_at is null;
  v_fixed integer;
  v_taken integer;
  v_delay integer;
begin
  if v_before = v_after then
    return coalesce(new, old);
  end if;
  -- the organisation itself is being deleted (cascade): no seat to bill
  if not exists (select 1 from public.organizations o where o.id = v_org) then
    return coalesce(new, old);
  end if;
  perform pg_advisory_xact_lock(hashtextextended('voco.seats|' || v_org::text, 0));
  if v_after then
    select c.fixed_seats into v_fixed from public.billing_customers c where c.org_id = v_org;
    if v_fixed is not null then
      select count(*) into v_taken from public.org_members m
       where m.org_id = v_org and m.user_id <> new.user_id
         and m.seat_active and m.removed_at is null;
      if v_taken >= v_fixed then
        raise exception 'the organisation''s plan has % seats and all are taken', v_fixed
          using errcode = 'VS409',
                hint = 'remove a member (or their seat) first, or move to a plan with more seats';
      end if;
    end if;
  end if;
  insert into public.seat_sync (org_id, version) values (v_org, 1)
    on conflict (org_id) do update set version = public.seat_sync.version + 1, updated_at = now();
  if exists (select 1 from public.billing_customers c
             where c.org_id = v_org and c.stripe_customer_id is not null)
     and to_regclass('jobs.procrastinate_jobs') is not null then
    v_delay := coalesce(nullif(current_setting('voco.seat_debounce_s', true), '')::integer, 10);
    begin
      perform jobs.procrastinate_defer_jobs_v1(array[row(
        'billing', 'voco.billing.seats', 0, 'seats:' || v_org::text, 'seats:' || v_org::text,
        jsonb_build_object('org', v_org::text), now() + make_interval(secs => v_delay)
      )::jobs.procrastinate_job_to_defer_v1]);
    exception when unique_violation then
      null;  -- a sync is queued already; it reads the latest count when it runs
    end;
  end if;
  return coalesce(new, old);
end
$$;
revoke all on function public.org_member_seats() from public, anon, authenticated, service_role;

create trigger org_members_seats before insert or update or delete on public.org_members
  for each row execute function public.org_member_seats();
