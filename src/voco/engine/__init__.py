"""The cognitive engine: WebSocket sessions, the voice pipeline and the agent."""
