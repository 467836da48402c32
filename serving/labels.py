"""Display strings shared by the scoring server and the control plane: version labels, headers.

Why: the dev and prod registries number their versions independently, so "v2" alone does
not say which model serves. A deployment may carry the registry its version belongs to and,
for a promoted prod version, the dev version it came from; `version_label` turns those into
one readable string (`prod v2 (from dev v3)`) used by `/health`, the `x-mlops-model` response
header and `mlops endpoint list`. Deployments recorded without them read `v2`.

Stdlib only: the control plane (resources/, the CLI) imports this without the server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

MAX_HEADER_NAMES = 50  # ignored column names listed in a header; a count says the rest


def version_label(version: str, registry: str | None = None, source: str | None = None) -> str:
    """`prod v2 (from dev v3)`, `prod v2`, or `v2`; empty without a version."""
    if not version:
        return ""
    label = f"{registry} v{version}" if registry else f"v{version}"
    return f"{label} (from dev v{source})" if source else label


def header_text(text: str) -> str:
    """`text` as a header value: printable ASCII, escaped like a JSON string's inside."""
    return json.dumps(text)[1:-1]


def names_header(names: Sequence[str]) -> str:
    """Column names as a JSON array of ASCII strings, cut to `MAX_HEADER_NAMES` names."""
    shown = [name[:100] for name in names[:MAX_HEADER_NAMES]]
    if len(names) > MAX_HEADER_NAMES:
        shown.append(f"... and {len(names) - MAX_HEADER_NAMES} more")
    return json.dumps(shown)
