"""Data estate: generic data-quality check results; sources live in scenarios/<name>/."""
