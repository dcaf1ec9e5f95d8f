-- Metered billing (seed §5). Usage is written with the turn (same
-- transaction), aggregated into meter_reports by the job queue and sent to
-- Stripe with identifiers derived from (org, event, bucket, seq). Every table
-- is in `public` (Supabase serves it over REST), so: RLS enabled and forced,
-- members read their organisation's billing rows, only service_role (the
-- worker, the webhook handler) writes billing state, and nobody updates or
-- deletes usage rows except the worker marking them reported.

-- an org's Stripe customer; usage of an org without one is held (unreported)
create table public.billing_customers (
  org_id             uuid primary key references public.organizations(id) on delete cascade,
  stripe_customer_id text unique,              -- null: unlinked (customer.deleted)
  fixed_seats        integer check (fixed_seats is null or fixed_seats >= 0),  -- fixed-seat plan
  linked_at          timestamptz not null default now(),
  updated_at         timestamptz not null default now()
);

-- one row per Stripe subscription, keyed by Stripe's id; the org is found
-- through the customer, so a subscription event that arrives before the
-- checkout that links its customer is kept and applies once linked
create table public.subscriptions (
  subscription_id text primary key,
  customer_id     text not null,
  status          text not null,
  seat_item_id    text,
  quantity        integer,
  event_created   bigint not null,             -- `created` of the newest event applied
  past_due_since  timestamptz,
  updated_at      timestamptz not null default now()
);
create index subscriptions_customer on public.subscriptions (customer_id);

-- webhook idempotency: a replayed event id is a no-op
create table public.stripe_events (
  event_id    text primary key,
  type        text not null,
  created     bigint not null,
  received_at timestamptz not null default now(),
  outcome     text not null
);

-- what was (or is to be) sent to Stripe; never rewritten once sent: late
-- usage for a bucket is a new report with the next seq
create table public.meter_reports (
  id           bigint generated always as identity primary key,
  org_id       uuid not null references public.organizations(id) on delete cascade,
  customer_id  text not null,
  event_name   text not null,
  bucket_start timestamptz not null,
  seq          integer not null check (seq >= 0),
  value        bigint not null check (value > 0),
  identifier   text not null unique,
  status       text not null default 'pending' check (status in ('pending', 'sent', 'failed', 'expired')),
  attempts     integer not null default 0,
  last_error   text,
  created_at   timestamptz not null default now(),
  sent_at      timestamptz,
  updated_at   timestamptz not null default now(),
  unique (org_id, event_name, bucket_start, seq)
);
create index meter_reports_open on public.meter_reports (id) where status in ('pending', 'failed');

create table public.usage_events (
  id          uuid primary key,                -- voco.billing.meters.usage_id(turn, meter, model)
  org_id      uuid not null references public.organizations(id) on delete cascade,
  thread_id   text not null,
  turn_id     text not null,
  user_id     uuid not null,
  meter       text not null,
  model       text not null default '',
  event_name  text not null,                   -- the Stripe meter's event name
  value       bigint not null check (value > 0),
  occurred_at timestamptz not null default now(),
  -- the meter_reports row this usage was reported in. No foreign key on
  -- purpose: its per-row check is two thirds of the cost of marking a million
  -- rows, and the only writer (the aggregation, service_role) sets ids it
  -- inserted in the same transaction
  report_id   bigint
);
-- the aggregation reads only what is unreported
create index usage_events_unreported on public.usage_events (org_id) where report_id is null;

-- automatic seats: `version` counts membership changes (the idempotency key
-- of the quantity update includes it, so 3 → 4 → 3 is three updates, not a
-- replay); `synced_version` is the last one Stripe has
create table public.seat_sync (
  org_id         uuid primary key references public.organizations(id) on delete cascade,
  version        bigint not null default 0,
  synced_version bigint not null default 0,
  synced_quantity integer,
  last_error     text,
  updated_at     timestamptz not null default now()
);

-- ---------------------------------------------------------------- RLS
alter table public.billing_customers enable row level security;
alter table public.billing_customers force row level security;
alter table public.subscriptions     enable row level security;
alter table public.subscriptions     force row level security;
alter table public.stripe_events     enable row level security;
alter table public.stripe_events     force row level security;
alter table public.meter_reports     enable row level security;
alter table public.meter_reports     force row level security;
alter table public.usage_events      enable row level security;
alter table public.usage_events      force row level security;
alter table public.seat_sync         enable row level security;
alter table public.seat_sync         force row level security;

create policy billing_customers_read on public.billing_customers for select to authenticated
  using (public.is_member(org_id));
create policy subscriptions_read on public.subscriptions for select to authenticated
  using (exists (select 1 from public.billing_customers c
                 where c.stripe_customer_id = subscriptions.customer_id and public.is_member(c.org_id)));
create policy meter_reports_read on public.meter_reports for select to authenticated
  using (public.is_member(org_id));
create policy usage_read on public.usage_events for select to authenticated
  using (public.is_member(org_id));
-- the turn writer inserts its own usage, into a thread it owns, never reported
create policy usage_write on public.usage_events for insert to authenticated
  with check (user_id = auth.uid() and public.is_member(org_id) and report_id is null
              and exists (select 1 from public.threads t
                          where t.id = thread_id and t.org_id = usage_events.org_id
                            and t.owner_id = auth.uid()));
create policy seat_sync_read on public.seat_sync for select to authenticated
  using (public.is_member(org_id));
-- an owner/admin changing a seat marks the org's seats for sync
create policy seat_sync_mark on public.seat_sync for insert to authenticated
  with check (public.org_role(org_id) in ('owner', 'admin'));
create policy seat_sync_bump on public.seat_sync for update to authenticated
  using (public.org_role(org_id) in ('owner', 'admin'))
  with check (public.org_role(org_id) in ('owner', 'admin'));
-- stripe_events: no policy, so no API role sees or writes it

revoke all on public.billing_customers, public.subscriptions, public.stripe_events,
  public.meter_reports, public.usage_events, public.seat_sync from anon, authenticated, public;
grant select on public.billing_customers, public.subscriptions, public.meter_reports to authenticated;
grant select, insert on public.usage_events to authenticated;
grant select, insert, update (version, updated_at) on public.seat_sync to authenticated;
grant select, insert, update, delete on public.billing_customers, public.subscriptions,
  public.stripe_events, public.meter_reports, public.seat_sync to service_role;
-- usage rows: the worker only marks them reported
grant select, insert on public.usage_events to service_role;
grant update (report_id) on public.usage_events to service_role;
grant usage on sequence public.meter_reports_id_seq to service_role;

-- the job queue's tables live in `jobs`, which no API role can reach
create schema if not exists jobs;
revoke all on schema jobs from public, anon, authenticated;
