"""Generic data-quality check results for partitioned landing assets.

A scenario's raw asset validates each partition it lands (its own schema and
rules) and collects `{check: {partition: [problems]}}`; this module turns that
into one `AssetCheckResult` per check, with the same metadata keys on pass and
fail so the UI can chart failed partitions over time. A check's severity is the
scenario's policy: ERROR blocks downstream assets, WARN only reports.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

Failures = dict[str, dict[str, list[str]]]


def problems_markdown(failures: dict[str, list[str]]) -> str:
    import pandas as pd

    rows = [(day, p) for day, items in failures.items() for p in items[:5]]
    return pd.DataFrame(rows, columns=["partition", "problem"]).to_markdown(index=False)


def check_results(
    failures: Failures,
    checked_partitions: int,
    severities: Mapping[str, dg.AssetCheckSeverity] | None = None,
) -> list[dg.AssetCheckResult]:
    """One result per check: failed when any partition has a problem for it; ERROR unless
    `severities` says otherwise."""
    return [
        dg.AssetCheckResult(
            check_name=check,
            passed=not by_day,
            severity=(severities or {}).get(check, dg.AssetCheckSeverity.ERROR),
            description=(
                "; ".join(f"{d}: {p[0]}" for d, p in list(by_day.items())[:3]) if by_day else None
            ),
            metadata={
                "failed_partitions": len(by_day),
                "checked_partitions": checked_partitions,
                "problems": dg.MetadataValue.md(problems_markdown(by_day)),
            },
        )
        for check, by_day in failures.items()
    ]
