"""`mlops label list|annotate`: human labeling in the terminal, on any labeling backend.

`annotate` shows each item the caller has not labeled yet (a grey image as block
art, or the item's fields), the model's prediction as the suggested answer and the
classes, and reads one answer a line from stdin: Enter accepts the suggestion, a
class name or its number labels, `s` skips, `q` (or end of input) quits. Each
answer is recorded at once, so quitting loses nothing. `--review` works through
the items the latest labeled set held out for low agreement; those answers decide
the items. The annotator is the caller's identity from the environment (the OS
account, or the Entra ID on Azure), never a flag.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from mlops_cli import output as out
from mlops_cli.core import GROUPS, CliError, _caller, arg, command

GROUPS["label"] = "human labeling: tasks, progress, annotating in the terminal"
SCENARIO = arg("scenario", help="scenario whose labeling project to use, e.g. vision")
TASK_COLUMNS = (
    "task",
    "format",
    "items",
    "labeled",
    "annotations",
    "yours_pending",
    "status",
    "url",
)


@contextmanager
def _project() -> Iterator[tuple[Any, Any]]:
    """The environment's labeling project (initialized, nested lake included) and identity."""
    import dagster as dg

    from mlops_cli import stores
    from resources.env import current_env
    from resources.labeling import LabelingError

    try:
        env = current_env()
    except ValueError as err:
        raise CliError(str(err)) from err
    where = stores.locate(env)
    stores.note(where.describe())
    try:
        available = stores.resources_of(where)
    except ValueError as err:  # e.g. an unknown MLOPS_LABELING
        raise CliError(str(err)) from err
    labeling, identity = available["labeling"], available["identity"]
    missing = [
        value.env_var_name
        for resource in (labeling, labeling.lake)
        for field in type(resource).model_fields
        if isinstance(value := getattr(resource, field), dg.EnvVar)
        and value.env_var_name not in os.environ
    ]
    if missing:
        raise CliError(f"the {type(labeling).__name__} labeling project needs {', '.join(missing)}")
    stores.note(f"labeling project: {type(labeling).__name__}")
    try:
        with labeling.process_config_and_initialize_cm() as project:
            yield project, identity.process_config_and_initialize()
    except LabelingError as err:
        raise CliError(str(err)) from err


@command("label list", "labeling tasks of a scenario with their progress", SCENARIO)
def cmd_label_list(args: argparse.Namespace) -> None:
    with _project() as (project, identity):
        me = _caller(identity).principal
        pending: dict[str, int] = {}
        for item in project.pending_items(args.scenario, me):
            pending[item["task_id"]] = pending.get(item["task_id"], 0) + 1
        rows = [
            {**t.to_row(), "yours_pending": pending.get(t.task_id, 0)}
            for t in project.tasks(args.scenario)
        ]
    out.emit(rows, args.output, columns=TASK_COLUMNS)


@command(
    "label annotate",
    "label pending items in the terminal (answers from stdin)",
    SCENARIO,
    arg("--task", help="only this task (default: every open task)"),
    arg(
        "--review",
        action="store_true",
        help="decide the items held out for low agreement (you act as reviewer)",
    ),
)
def cmd_label_annotate(args: argparse.Namespace) -> None:
    with _project() as (project, identity):
        me = _caller(identity).principal
        if args.review:
            items = project.review_items(args.scenario)
            items = [i for i in items if not args.task or i["task_id"] == args.task]
        else:
            items = project.pending_items(args.scenario, me, args.task)
        masks = [i for i in items if i.get("task_format") == "segmentation"]
        if masks:  # a mask cannot be drawn at a prompt
            print(
                f"note: {len(masks)} segmentation item(s) left for a drawing tool (Label Studio)",
                file=sys.stderr,
            )
        items = [i for i in items if i.get("task_format") != "segmentation"]
        done = annotate_items(project, args.scenario, items, me, args.review, sys.stdin, sys.stdout)
    out.emit({"scenario": args.scenario, "annotator": me, **done}, args.output)


def annotate_items(
    project: Any,
    scenario: str,
    items: list[dict[str, Any]],
    annotator: str,
    review: bool,
    stdin: TextIO,
    stdout: TextIO,
) -> dict[str, int]:
    """Show each item, read an answer, record it at once; counts of labeled/skipped/left."""
    labeled = skipped = 0
    for n, item in enumerate(items, 1):
        print(item_card(project, scenario, item, n, len(items), review), file=stdout)
        while True:
            print(prompt(item), end="", file=stdout, flush=True)
            line = stdin.readline()
            if not stdin.isatty():  # piped answers: show them, as a terminal echoes typing
                print(line.rstrip("\n"), file=stdout)
            kind, value = parse_answer(line if line else "q", item)
            if kind != "invalid":
                break
            print(f"  {value}", file=stdout)
        if kind == "quit":
            break
        if kind == "skip":
            skipped += 1
            continue
        project.annotate(
            scenario,
            [
                {
                    "item_id": item["item_id"],
                    "label": value,
                    "annotator": annotator,
                    "reviewed": review,
                }
            ],
        )
        labeled += 1
        print(f"  saved: {value}", file=stdout)
    return {"labeled": labeled, "skipped": skipped, "left": len(items) - labeled - skipped}


def item_card(project: Any, scenario: str, item: dict, n: int, total: int, review: bool) -> str:
    """What a labeler sees of one item: where it is from, the item, the classes."""
    from mlops_core.labeling_view import block_art, fields_text

    head = f"[{n}/{total}] task {item['task_id']}  item {item['item_id']}  ({item.get('why')})"
    if item.get("task_format") in ("image", "segmentation") and item.get("image"):
        try:
            body = block_art(project.image_bytes(scenario, str(item["image"])))
        except (FileNotFoundError, ValueError) as err:
            body = f"(image not shown: {err})"
    elif item.get("task_format") == "text" and "text" in item:
        import textwrap  # the text is what a labeler judges, not its logged statistics

        body = textwrap.fill(str(item["text"]), 88) or "(empty text)"
    else:
        body = fields_text(item)
    classes = item.get("classes") or []
    lines = [head, body, "classes: " + "  ".join(f"{k}) {c}" for k, c in enumerate(classes, 1))]
    if review:
        lines.append(f"votes: {item.get('votes')} (agreement {item.get('agreement')})")
    lines.append(f"suggested: {suggestion(item)} (the model's prediction)")
    return "\n".join(lines)


def suggestion(item: dict[str, Any]) -> Any:
    """The model's prediction when it is one of the classes, else None."""
    predicted, classes = item.get("prediction"), item.get("classes") or []
    return next((c for c in classes if str(c) == str(predicted)), None)


def prompt(item: dict[str, Any]) -> str:
    count = len(item.get("classes") or [])
    accept = f"Enter = {suggestion(item)} | " if suggestion(item) is not None else ""
    return f"label [{accept}1-{count} or a class | s skip | q quit]: "


def parse_answer(line: str, item: dict[str, Any]) -> tuple[str, Any]:
    """An answer line as (label, class) | (skip|quit, None) | (invalid, why)."""
    text, classes = line.strip(), list(item.get("classes") or [])
    if text == "":
        chosen = suggestion(item)
        return (
            ("label", chosen) if chosen is not None else ("invalid", "no suggestion: type a class")
        )
    if text.lower() in ("s", "skip"):
        return "skip", None
    if text.lower() in ("q", "quit"):
        return "quit", None
    for c in classes:
        if str(c) == text:
            return "label", c  # a class named like a number wins over the number
    if text.isdigit() and 1 <= int(text) <= len(classes):
        return "label", classes[int(text) - 1]
    return "invalid", f"{text!r} is not a class: use 1-{len(classes)}, a class name, s or q"
