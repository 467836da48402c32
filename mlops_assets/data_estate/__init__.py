"""Data estate: generic helpers for versioned datasets; sources live under scenarios/<name>/."""
