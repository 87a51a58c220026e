"""Prompt test logs: the PromptCrafter compatible API."""
