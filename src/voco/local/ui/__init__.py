"""The local runtime's web UI server: static page + browser WebSocket relay."""
