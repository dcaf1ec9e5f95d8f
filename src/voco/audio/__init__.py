"""Audio core: PCM framing, Silero VAD (batched across sessions), turn detection,
resampling and encoding. Pure and synchronous where possible, so it is tested
without sockets."""
