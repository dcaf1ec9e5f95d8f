"""Local, protocol-faithful doubles of the cloud APIs Voco's providers talk to.

Each double is a real server on 127.0.0.1 speaking the vendor's wire format, so
the providers are exercised through the vendor SDK / WebSocket client exactly as
in production - only the host differs. Doubles validate what they receive the way
the real API does (auth headers, required fields, message ordering rules) and can
be scripted to fail the ways real services fail.
"""
