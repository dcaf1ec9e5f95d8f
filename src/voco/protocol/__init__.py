"""Wire protocol v1: pydantic models and the sans-I/O session core.

Everything that crosses the engine <-> runtime WebSocket is defined here, in one
place, so the server, the local runtime, the tests and the docs cannot drift.
"""

PROTOCOL_VERSION = 1
