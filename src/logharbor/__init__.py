"""LogHarbor: HTTP traffic logs and prompt test logs in one self-hosted service."""

__version__ = "0.1.0"
