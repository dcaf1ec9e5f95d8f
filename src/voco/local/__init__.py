"""Voco local runtime: the user-side half that answers the engine under a sandbox."""
