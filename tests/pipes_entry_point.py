"""A cheap training entry point for the Azure ML Pipes test: same shape as the scenarios'.

`run(argv)` is pure (arguments in, JSON-able metadata out); `main()` reports it through
`mlops_core.training_io.report_through_pipes`, which opens the blob transport when
`MLOPS_PIPES_TRANSPORT=azure_blob`, as a real training job does. `--fail` exits non-zero
before reporting, as a crashing job would.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args(argv)
    if args.fail:
        sys.exit(3)
    return {
        "rows": args.rows,
        "total": sum(range(args.rows)),
        "extra_env": os.environ.get("MLOPS_TEST_EXTRA", ""),
        "run_id": os.environ.get("AZUREML_RUN_ID", ""),
    }


def main() -> None:
    from mlops_core.training_io import report_through_pipes

    report_through_pipes(run, sys.argv[1:])


if __name__ == "__main__":
    main()
