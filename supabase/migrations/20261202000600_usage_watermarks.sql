-- Usage is marked reported by a per-org watermark, not row by row.
--
-- Marking a million usage rows one by one (`update … set report_id`, after
-- locking each `for update`) rewrote every tuple twice and every index entry
-- once: about a minute for 1 M rows on a loaded 2-core machine. Instead each
-- usage row carries the id of the transaction that wrote it (`txid`, set by a
-- trigger, so no client can forge it), and an org's usage is reported up to a
-- watermark: every row with txid < usage_watermarks.reported_below is in a
-- meter report. The aggregation takes the rows with
--   reported_below <= txid < xmin(current snapshot)
-- and moves the watermark to that xmin. This is sound because every
-- transaction older than the snapshot's xmin has finished: no row with a txid
-- below it can still appear (a turn committing late has a txid at or above
-- xmin and is taken by the next run). Marking is one row per org, whatever
-- the number of usage rows.
--
-- Exactly once: the reports (pending) and the watermark move commit together;
-- two workers lock an org's watermark row `for update skip locked`, so an org
-- is aggregated by one of them; usage for a bucket already reported becomes a
-- report with the next seq (never a rewrite). The reports record the txid
-- range they cover, so any usage row can be traced to its report.
--
-- Caveat, said where it matters: transaction ids restart in a *new* cluster
-- (pg_dump/restore, not a replica promotion). The aggregation refuses to run
-- when the current txid is below a stored watermark, loudly, rather than skip
-- usage; `voco billing status` shows it.

create table public.usage_watermarks (
  org_id         uuid primary key references public.organizations(id) on delete cascade,
  reported_below xid8 not null default '0',
  updated_at     timestamptz not null default now()
);

alter table public.usage_events add column txid xid8 not null default '0';
alter table public.meter_reports add column txid_from xid8, add column txid_to xid8;

-- rows written before this migration: the reported ones below 1, the
-- unreported ones at 2 (real transaction ids start at 3), watermarks at 2
update public.usage_events set txid = case when report_id is null then '2' else '1' end::xid8;
insert into public.usage_watermarks (org_id, reported_below)
  select distinct org_id, '2'::xid8 from public.usage_events;

drop policy usage_write on public.usage_events;
drop index public.usage_events_unreported;
alter table public.usage_events drop column report_id;
create index usage_events_org_txid on public.usage_events (org_id, txid);

create function public.usage_txid() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  new.txid := pg_current_xact_id();
  return new;
end
$$;
create trigger usage_events_txid before insert on public.usage_events
  for each row execute function public.usage_txid();
-- a row's txid never changes after the insert
revoke update on public.usage_events from service_role;

-- the turn writer inserts its own usage, into a thread it owns
create policy usage_write on public.usage_events for insert to authenticated
  with check (user_id = auth.uid() and public.is_member(org_id)
              and exists (select 1 from public.threads t
                          where t.id = thread_id and t.org_id = usage_events.org_id
                            and t.owner_id = auth.uid()));

alter table public.usage_watermarks enable row level security;
alter table public.usage_watermarks force row level security;
create policy usage_watermarks_read on public.usage_watermarks for select to authenticated
  using (public.is_member(org_id));
revoke all on public.usage_watermarks from anon, authenticated, public;
grant select on public.usage_watermarks to authenticated;
grant select, insert, update on public.usage_watermarks to service_role;
