"""Moving in: bringing the history of the systems LogHarbor replaces (Arkyn Logs, PromptCrafter)
into its store, rerunnably, a page per transaction."""
