"""The web UI, server-rendered from the same queries the APIs use."""
