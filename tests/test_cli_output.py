"""Table output says what the data says: a false value is printed false.

Protects against tabulate's column wrapping, which casts the strings "True" and
"False" with bool(); `mlops audit --verify -o table` once printed `intact True`
for a broken trail.
"""

from __future__ import annotations

from mlops_cli.output import render_table


def cells(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()[2:]]


def test_booleans_in_a_field_table_keep_their_value():
    assert cells(render_table({"intact": False, "records": 2})) == [
        ["intact", "false"],
        ["records", "2"],
    ]


def test_booleans_in_a_row_table_keep_their_value():
    assert cells(render_table([{"running": False, "ready": True}])) == [["false", "true"]]
