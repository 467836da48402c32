"""Resources a run's launch config reconfigured: evidence a governance record must not rest on.

The Launchpad (or any run config) may override every field of a resource bound
in code: point `governance.policy_path` at another policy, `approvals.path` at
another store, `registry.root` at another registry. Runs whose records or
decisions feed the production gate (staging results, promotion) check this and
refuse, or record that the evidence does not count.
"""

from typing import Any

# Resources whose reconfiguration at launch would change what a governance gate sees.
GUARDED = ("approvals", "governance", "identity", "registry", "endpoints", "lake")


def reconfigured_resources(run_config: dict[str, Any] | None) -> list[str]:
    """The guarded resource keys that `run_config` overrides, sorted; [] when none."""
    overridden = ((run_config or {}).get("resources") or {}).keys()
    return sorted(key for key in overridden if key in GUARDED)
