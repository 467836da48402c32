"""The lifecycle's pure logic: no Dagster, no asset modules, no resources.

Spec types, typed stage results, governance (policy, audit, approvals),
monitoring statistics (drift, health, cost), endpoint probes and training I/O.
`resources/`, `sensors/`, the CLI, the training entry points and the assets all
use it; it imports none of them (tests/test_import_rules.py).
"""
