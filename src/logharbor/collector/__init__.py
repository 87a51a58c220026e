"""Client-side collector: capture an app's HTTP traffic and ship it to LogHarbor.

Importable with only the standard library and httpx; never imports the server.
"""
