"""Provider interfaces (VAD aside): speech-to-text, text-to-speech, language models.

Each kind has one small abstract interface in :mod:`voco.providers.base` with
capability flags; embedded (offline) and cloud implementations live side by side
in this package and are chosen by name through :mod:`voco.providers.registry`.
"""
