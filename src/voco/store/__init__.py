"""Durable engine state: LangGraph checkpoints and tenant data in Postgres.

The in-memory defaults lose every conversation when the engine restarts; this
package keeps both in one PostgreSQL database — an embedded server by default,
``VOCO_DATABASE_URL`` (Supabase) in production — with the same migrations and
row-level security on both. Entry point: :func:`open_store`; the engine's view
of tenant data: :class:`~voco.store.tenancy.TenantStore`.
"""

from voco.store.postgres import ENV_URL, Store, default_pgdata, open_store

__all__ = ["ENV_URL", "Store", "default_pgdata", "open_store"]
