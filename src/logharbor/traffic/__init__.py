"""HTTP traffic logs: the Arkyn Logs compatible API."""
