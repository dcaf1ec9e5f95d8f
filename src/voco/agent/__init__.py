"""The cognitive engine's brain: the seed's LangGraph state machine (§3)."""
