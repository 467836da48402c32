"""Platform-wide assets (key prefix `platform`): the cost ledger."""
