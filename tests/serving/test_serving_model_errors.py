"""A model that raises on valid input: a 500 JSON error, logged, that fails no other request.

The input is valid by the model's signature (an unseen carrier), so the failure is the model's,
not the client's; the requests batched with it in the same model call still get answers.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serving.batching import MicroBatcher, ModelError
from serving.scoring.inference_log import iter_records
from serving.scoring.model import ServedModel
from serving.scoring.parsing import parse_azureml
from tests.serving.bad_input_cases import JSON, ROW, split
from tests.serving.conftest import COLUMNS, TestClient, rows


def test_model_failure_is_a_logged_500(module_client: TestClient) -> None:
    # blue's OneHotEncoder(handle_unknown="error") raises on an unseen carrier: valid input
    # by the signature, so it is the model's failure, not the client's.
    response = module_client.post(
        "/score",
        content=split([[1.5, 500, "ZZ", 3.0]]),
        headers={**JSON, "x-request-id": "unseen-carrier"},
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "model_error" and "ZZ" in error["message"]
    log_dir = module_client.app.state.server.runtime.settings.inference_log_dir
    logged = [r for r in iter_records(log_dir) if r["request_id"] == "unseen-carrier"]
    assert [(r["status"], r["outputs"]) for r in logged] == [(500, None)]
    assert module_client.post("/score", content=split([ROW]), headers=JSON).status_code == 200


def test_one_failing_request_does_not_fail_its_batch(models: dict[str, Path]) -> None:
    model = ServedModel(models["blue"])

    def arrays(data: list[list[object]]):
        table = parse_azureml({"input_data": {"columns": COLUMNS, "data": data}})
        return model.schema.to_arrays(table), table.nrows

    async def run() -> list[object]:
        batcher = MicroBatcher(model, executor, max_rows=100)
        inputs = [arrays(rows(2, 1)), arrays([[1.5, 500, "ZZ", 3.0]]), arrays(rows(3, 2))]
        results = await asyncio.gather(
            *(batcher.predict(a, n) for a, n in inputs), return_exceptions=True
        )
        assert batcher.batches == 1  # all three went in one model call first
        return results

    with ThreadPoolExecutor(1) as executor:
        good, bad, also_good = asyncio.run(run())
    assert isinstance(bad, ModelError) and "ZZ" in str(bad)
    assert good == model.predict(*arrays(rows(2, 1)))
    assert also_good == model.predict(*arrays(rows(3, 2)))
