"""Labeling sensor: enough new human labels request a new labeled set and the training run.

The relabel loopback's second half (vision, NLP): labelers complete tasks that
the drift sensor's labeling run created; once `min_new_labels` completed
annotations are in that no labeled set has used yet, one run builds a new
labeled set version and trains on it. The count comes from the `labeling`
resource (lake files, Label Studio or the Azure ML export), whose
`count_completed` is one cheap call (no export, no statistics in the tick); the
run key is the annotation count, so one batch of labels never launches two runs,
and the cursor only advances with a request. An unreachable labeling tool is a
skip that says so, not a failed tick.
"""

import dagster as dg

from mlops_core.naming import labeled_training_job_name
from mlops_core.spec import ScenarioSpec
from resources.labeling import LabelingError, LabelingProject


def build_labels_sensor(spec: ScenarioSpec) -> dg.SensorDefinition:
    if spec.labeling is None:
        raise ValueError(f"{spec.name} has no labeling spec: no labels sensor")
    needed = spec.labeling.min_new_labels
    job_name = labeled_training_job_name(spec.name)

    @dg.sensor(
        name=f"{spec.name}_labels_sensor",
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches the {spec.name} labeling project. Requests a labeled set and "
        f"training of {spec.model_name} when {needed} new human labels are complete.",
    )
    def labels_sensor(context: dg.SensorEvaluationContext, labeling: LabelingProject):
        used = int(context.cursor or 0)
        try:
            total = labeling.count_completed(spec.name)
        except LabelingError as err:
            return dg.SkipReason(f"cannot count {spec.name} labels: {err}")
        if total - used < needed:
            return dg.SkipReason(f"{total - used} new label(s) of {needed} needed")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"labels-{spec.name}-{total}",
                    tags={
                        "scenario": spec.name,
                        "mlops/trigger": "labels",
                        "mlops/labels": str(total),
                    },
                )
            ],
            cursor=str(total),
        )

    return labels_sensor
