"""Label Studio backend of the labeling project, over its REST API (`Authorization: Token`).

Each of our tasks becomes one Label Studio project, so a task's classes, format and
progress stay its own: an image classification (`<Choices>`), brush segmentation
(`<BrushLabels>`) or text classification config (tabular items are shown as text).
Tasks are imported with the image inlined as a `data:image/png;base64,...` URI (no file
server needed) and the model's prediction as a pre-annotation (`predictions`). Completed
annotations come back from the project's JSON export: skipped ones are left out, a
`ground_truth` annotation is a reviewer's decision, and the annotator is the Label Studio
user (username, else email). Annotations made through this backend (`mlops label`, the
simulated annotator) are attributed to a Label Studio user named after the annotator,
created on first use, because the REST API records `completed_by` as a user.

Label Studio runs from its own venv (`make label-studio`; see
`resources/labeling_studio_server.py`). The token comes from the environment
(`MLOPS_LABEL_STUDIO_TOKEN`, through `dg.EnvVar`), never from a flag or a file.
"""

import base64
import json
import re
from html import escape
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mlops_core.labeling import IMAGE_REF, ITEM_ID
from resources.labeling import LabelingError, LabelingProject, annotation_frame, class_value

if TYPE_CHECKING:  # imported where used, so loading the code location stays light
    import httpx
    import pandas as pd

TITLE_MAX = 50  # Label Studio's project title limit
_OBJECT = {"image": "image", "segmentation": "image", "text": "text", "tabular": "text"}


def label_config(task_format: str, classes: list[Any]) -> str:
    """The labeling interface for a task format over `classes`."""
    obj = _OBJECT[task_format]
    if task_format == "segmentation":
        labels = "".join(f'<Label value="{escape(str(c))}"/>' for c in classes)
        return (
            f'<View><Image name="image" value="$image" zoom="true"/>'
            f'<BrushLabels name="label" toName="image">{labels}</BrushLabels></View>'
        )
    shown = '<Text name="text" value="$text"/>'
    if obj == "image":
        shown = '<Image name="image" value="$image"/>'
    choices = "".join(f'<Choice value="{escape(str(c))}"/>' for c in classes)
    return (
        f'<View>{shown}<Choices name="label" toName="{obj}" choice="single" '
        f'showInline="true">{choices}</Choices></View>'
    )


def annotation_label(result: list[dict[str, Any]], classes: list[Any]) -> Any:
    """The label an annotation's result carries: its choice, or its brush masks as JSON (one
    region as Label Studio's value; several, one per nucleus say, as {"regions": [...]})."""
    brushes = []
    for region in result:
        value = region.get("value", {})
        if value.get("choices"):
            return class_value(value["choices"][0], classes)
        if region.get("type") == "brushlabels":
            brushes.append(value)
    if len(brushes) == 1:
        return json.dumps(brushes[0], sort_keys=True)  # RLE mask + label, decoded by training
    if brushes:
        return json.dumps({"regions": brushes}, sort_keys=True)
    raise LabelingError(f"an annotation result carries no choice or brush label: {result!r}")


class LabelStudioProject(LabelingProject):
    """A Label Studio server; one Label Studio project per labeling task."""

    url: str = Field(description="Label Studio base URL (MLOPS_LABEL_STUDIO_URL).")
    token: str = Field(description="API token, `Authorization: Token` (use dg.EnvVar).")
    annotators_per_item: int = Field(
        default=2, ge=1, description="Annotators Label Studio asks for each item (overlap)."
    )
    timeout_s: float = Field(default=30.0, description="Timeout of each REST call.")

    # -- REST -----------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        base = self.url.rstrip("/")
        headers = {"Authorization": f"Token {self.token}"}
        try:
            response = httpx.request(
                method, f"{base}{path}", headers=headers, timeout=self.timeout_s, **kwargs
            )
        except httpx.HTTPError as err:
            raise LabelingError(f"Label Studio at {base} is unreachable: {err}") from err
        return self._answer(response, method, path)

    @staticmethod
    def _answer(response: "httpx.Response", method: str, path: str) -> Any:
        if response.status_code == 401:
            raise LabelingError(
                f"Label Studio refused the token ({method} {path}: 401): set "
                "MLOPS_LABEL_STUDIO_TOKEN to a legacy API token of a user of that server"
            )
        if not response.is_success:
            raise LabelingError(
                f"Label Studio {method} {path} answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        return response.json() if response.content else None

    def _projects(self, scenario: str) -> dict[int, dict[str, Any]]:
        """Our task manifests by their Label Studio project id."""
        found = {}
        for m in self.manifests(scenario):
            if "label_studio_project" not in m:
                raise LabelingError(
                    f"{scenario} task {m['task_id']} was created by {m.get('backend')}, not in "
                    "Label Studio; label it with that backend or create the task again"
                )
            found[int(m["label_studio_project"])] = m
        return found

    def _users(self) -> dict[int, str]:
        return {u["id"]: u.get("username") or u["email"] for u in self._call("GET", "/api/users/")}

    def _user_id(self, annotator: str, users: dict[int, str]) -> int:
        for uid, name in users.items():
            if name == annotator:
                return uid
        slug = re.sub(r"[^a-z0-9]+", "-", annotator.lower()).strip("-") or "annotator"
        made = self._call(
            "POST", "/api/users/", json={"username": annotator, "email": f"{slug}@mlops.invalid"}
        )
        users[made["id"]] = annotator
        return int(made["id"])

    def _export(self, project_id: int) -> list[dict[str, Any]]:
        # every task, labeled or not: by default the export leaves out tasks nobody labeled
        # yet, and the first annotation of a fresh project must find its task
        return self._call(
            "GET",
            f"/api/projects/{project_id}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )

    # -- the interface ---------------------------------------------------------------------
    def _open(
        self, scenario: str, task_id: str, items: list[dict], task_format: str, classes: list
    ) -> tuple[str, dict[str, Any]]:
        title = f"{scenario} {task_id}"[:TITLE_MAX]
        project = self._call(
            "POST",
            "/api/projects/",
            json={
                "title": title,
                "label_config": label_config(task_format, classes),
                "maximum_annotations": self.annotators_per_item,
                "show_skip_button": True,
            },
        )
        tasks = [self._task(scenario, task_id, item, task_format, classes) for item in items]
        self._call("POST", f"/api/projects/{project['id']}/import", json=tasks)
        url = f"{self.url.rstrip('/')}/projects/{project['id']}/data"
        return url, {"label_studio_project": project["id"]}

    def _task(
        self, scenario: str, task_id: str, item: dict, task_format: str, classes: list
    ) -> dict[str, Any]:
        from mlops_core.labeling_view import fields_text, png_bytes

        data = {ITEM_ID: str(item[ITEM_ID]), "task_id": task_id, "why": item.get("why", "")}
        obj = _OBJECT[task_format]
        if obj == "image":
            ref = str(item.get("image", ""))
            if not ref.startswith(IMAGE_REF):
                raise LabelingError(f"image item {item[ITEM_ID]} has no 'image: sha256:<hex>'")
            png = base64.b64encode(png_bytes(self.image_bytes(scenario, ref))).decode()
            data["image"] = f"data:image/png;base64,{png}"
        else:
            data["text"] = str(item["text"]) if "text" in item else fields_text(item)
        task: dict[str, Any] = {"data": data}
        predicted = item.get("prediction")
        if (
            task_format != "segmentation"
            and predicted is not None
            and str(predicted) in {str(c) for c in classes}
        ):
            choice = {"choices": [str(predicted)]}
            task["predictions"] = [
                {
                    "model_version": str(item.get("model_version", "model")),
                    "result": [
                        {"from_name": "label", "to_name": obj, "type": "choices", "value": choice}
                    ],
                }
            ]
        return task

    def annotations(self, scenario: str) -> "pd.DataFrame":
        rows, users = [], None
        for project_id, m in self._projects(scenario).items():
            for task in self._export(project_id):
                for a in task.get("annotations", []):
                    if a.get("was_cancelled") or not a.get("result"):
                        continue  # skipped: no label
                    if users is None:
                        users = self._users()
                    who = a.get("completed_by")
                    who = who.get("id") if isinstance(who, dict) else who
                    rows.append(
                        {
                            ITEM_ID: str(task["data"][ITEM_ID]),
                            "label": annotation_label(a["result"], m["classes"]),
                            "annotator": users.get(who) or f"label-studio-user-{who}",
                            "reviewed": bool(a.get("ground_truth")),
                        }
                    )
        return annotation_frame(rows)

    def count_completed(self, scenario: str) -> int:
        wanted, total, page = set(self._projects(scenario)), 0, 1
        while wanted:
            listed = self._call("GET", "/api/projects/", params={"page": page, "page_size": 100})
            for p in listed["results"]:
                if p["id"] in wanted:
                    wanted.discard(p["id"])
                    total += int(p.get("total_annotations_number") or 0)  # skips excluded
            if not listed.get("next"):
                break
            page += 1
        if wanted:
            raise LabelingError(f"Label Studio has no project {sorted(wanted)} of {scenario}")
        return total

    def annotate(self, scenario: str, annotations: list[dict[str, Any]]) -> int:
        checked = self.checked_annotations(scenario, annotations)
        projects = self._projects(scenario)
        tasks: dict[str, tuple[int, dict]] = {}
        for project_id, m in projects.items():
            for task in self._export(project_id):
                tasks[str(task["data"][ITEM_ID])] = (task["id"], m)
        users = self._users() if checked else {}
        for a in checked:
            task_id, m = tasks[a[ITEM_ID]]
            if m["task_format"] == "segmentation":
                raise LabelingError(
                    "segmentation masks are drawn in Label Studio: open " + m["url"]
                )
            obj = _OBJECT[m["task_format"]]
            result = [
                {
                    "from_name": "label",
                    "to_name": obj,
                    "type": "choices",
                    "value": {"choices": [str(a["label"])]},
                }
            ]
            self._call(
                "POST",
                f"/api/tasks/{task_id}/annotations/",
                json={
                    "result": result,
                    "completed_by": self._user_id(a["annotator"], users),
                    "ground_truth": a["reviewed"],
                },
            )
        return len(checked)
