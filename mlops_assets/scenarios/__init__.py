"""Scenario-specific code: one folder per model family, each exporting a `ScenarioSpec`."""
