"""All scenarios the code location serves, by name."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from mlops_assets.scenarios import classical, nlp, segmentation, vision
from mlops_core.spec import ScenarioSpec

SCENARIOS: dict[str, tuple[ScenarioSpec, Callable[[], dg.Definitions]]] = {
    classical.SPEC.name: (classical.SPEC, classical.build_scenario_defs),
    vision.SPEC.name: (vision.SPEC, vision.build_scenario_defs),
    segmentation.SPEC.name: (segmentation.SPEC, segmentation.build_scenario_defs),
    nlp.SPEC.name: (nlp.SPEC, nlp.build_scenario_defs),
}
