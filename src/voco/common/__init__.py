"""Plain data and helpers shared by layers that must not import each other.

Nothing here imports another ``voco`` package: the engine side (``agent``) and
the local runtime (``local``) both read it, and neither may import the other.
"""
