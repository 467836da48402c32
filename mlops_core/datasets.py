"""Immutable, content-addressed dataset versions in the lake.

A version's name is a hash of its content (every split's rows, columns and
dtypes), so training twice on the same days yields the same version, and a
version's folder is written once and never overwritten: a model registered on
`ds-1a2b...` can always be re-evaluated on exactly the rows it saw. The lake is
duck-typed (`exists`, `write_parquet`, `write_json`, `read_json`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from mlops_core.results import DatasetVersion

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import pandas as pd

MANIFEST = "manifest.json"


def content_version(splits: dict[str, pd.DataFrame]) -> str:
    """`ds-<12 hex>` over each split's name, schema and row hashes, in split-name order."""
    import pandas as pd

    digest = hashlib.sha256()
    for name in sorted(splits):
        frame = splits[name]
        digest.update(name.encode())
        digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return f"ds-{digest.hexdigest()[:12]}"


def write_version(
    lake: Any,
    root: str,
    name: str,
    splits: dict[str, pd.DataFrame],
    manifest: dict[str, Any],
) -> tuple[DatasetVersion, bool]:
    """Write `splits` as a new version under `root` unless that content exists already.

    Returns the version and whether it was written now. The manifest is written
    last, so a folder without one is an interrupted write and is written again.
    """
    version = content_version(splits)
    folder = f"{root}/{version}"
    result = DatasetVersion(
        name=name,
        version=version,
        root=folder,
        partition_range=str(manifest.get("partition_range", "")),
        train_rows=len(splits.get("train", ())),
        holdout_rows=len(splits.get("holdout", ())),
    )
    if lake.exists(f"{folder}/{MANIFEST}"):
        return DatasetVersion.from_metadata(read_manifest(lake, folder)), False
    for split, frame in splits.items():
        lake.write_parquet(result.path(split), frame)
    lake.write_json(f"{folder}/{MANIFEST}", {**manifest, **result.to_metadata()})
    return result, True


def read_manifest(lake: Any, root: str) -> dict[str, Any]:
    return lake.read_json(f"{root}/{MANIFEST}")
