"""Sensors and schedules that react to signals (drift, budget, infra, labels, approvals).

The classical foundation has none yet beyond the automation sensor and the
daily ingest schedule, which live with the definitions they drive.
"""
