"""Durable engine state: LangGraph checkpoints and thread ownership in Postgres.

The in-memory defaults lose every conversation when the engine restarts; this
package keeps both in one PostgreSQL database — an embedded server by default,
``VOCO_DATABASE_URL`` (Supabase) in production — behind the same interfaces,
so nothing in the session changes. Entry point: :func:`open_store`.
"""

from voco.store.postgres import ENV_URL, Store, default_pgdata, open_store
from voco.store.threads import PostgresThreadStore

__all__ = ["ENV_URL", "PostgresThreadStore", "Store", "default_pgdata", "open_store"]
