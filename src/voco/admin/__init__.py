"""Organisation administration and SOC 2 controls.

``api`` (the ``/v1/orgs`` HTTP routes on the engine) and ``orgs`` (the same
operations as the caller, under RLS); ``controls``, ``evidence`` and
``lifecycle`` (user deletion, audit retention) are operator tools that run
against the database directly. Nothing here imports the engine.
"""
