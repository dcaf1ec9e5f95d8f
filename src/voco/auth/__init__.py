"""Authentication: Supabase-style JWT access tokens."""
