"""Jobs and batch endpoints of the `RecordingMLClient` STAND-IN (tests/azure_standin.py).

What Azure ML would run, this runs locally as a subprocess, so the code under test meets
real processes, blob containers and files rather than canned answers:

- `jobs.create_or_update(command job)`: the job (validated by `load_job`) runs its
  `command` in its `code` folder with only the job's environment variables, plus
  `job_env` (what the compute's managed identity provides: e.g. an Azurite connection
  string) and `AZUREML_RUN_ID`; `python` is this interpreter. `jobs.get` reports
  Running / Completed / Failed from the process; `begin_cancel` terminates it.
- `batch_endpoints.invoke`: the request body is built with azure-ai-ml's own
  `BatchJobSchema`, as the SDK builds it; then this module's `main` plays Azure's batch
  driver: it imports the deployment's scoring script from its code folder, calls `init()`
  once, hands `run()` the input folder's files `mini_batch_size` at a time with
  `max_retries` retries, and appends what `run` returns to the output file, line by line
  (`output_action: append_row`). `error_threshold: 0`: one failed mini-batch fails the
  job. Not modelled: instances, per-instance concurrency, `retry_settings.timeout`.
  `jobs.download(name, output_name="score")` copies the output to
  `<download_path>/named-outputs/score/`, where the SDK puts it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.azure_standin import Call, Group, Poller, check_name, rejected, roundtrip

if TYPE_CHECKING:
    from tests.azure_standin import RecordingMLClient

BASE_ENV = ("PATH", "HOME", "LANG", "TMPDIR")  # what any process on a compute node has


class _Run:
    def __init__(self, entity: Any, proc: subprocess.Popen, log: Path, outputs: Path) -> None:
        self.entity, self.proc, self.log, self.outputs = entity, proc, log, outputs


class JobOps:
    name = "jobs"

    def __init__(self, client: RecordingMLClient, job_env: dict[str, str]) -> None:
        self.client, self.job_env = client, job_env
        self.runs: dict[str, _Run] = {}
        self.workdir: Path | None = None  # made by the first job, removed by close()

    def record(self, method: str, **args: Any) -> None:
        self.client.calls.append(Call(self.name, method, args))

    def start(self, entity: Any, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        self.workdir = self.workdir or Path(tempfile.mkdtemp(prefix="standin-jobs-"))
        folder = self.workdir / entity.name
        (folder / "outputs").mkdir(parents=True)
        log = folder / "std_log.txt"
        base = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        full = {**base, **env, **self.job_env, "AZUREML_RUN_ID": entity.name}
        full["MLOPS_STANDIN_OUTPUTS"] = str(folder / "outputs")
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=cwd, env=full, stdout=out, stderr=subprocess.STDOUT)
        entity._status = "Running"
        self.runs[entity.name] = _Run(entity, proc, log, folder / "outputs")

    def create_or_update(self, job: Any, **_: Any) -> Any:
        from azure.ai.ml import load_job

        built = job._to_job() if hasattr(job, "_to_job") else job
        body, loaded = roundtrip(built, load_job)
        self.record("create_or_update", body=body)
        loaded = loaded._to_job() if hasattr(loaded, "_to_job") else loaded
        if not loaded.compute:
            raise rejected("a command job needs a compute target")
        loaded.name = f"job-{secrets.token_hex(4)}"
        argv = shlex.split(loaded.command)
        if argv[0] == "python":  # the environment's interpreter
            argv[0] = sys.executable
        env = {k: str(v) for k, v in (loaded.environment_variables or {}).items()}
        self.start(loaded, argv, str(loaded.code), env)
        return loaded

    def get(self, name: str) -> Any:
        self.record("get", name=name)
        run = self.runs.get(name)
        if run is None:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(message=f"job {name} not found")
        code = run.proc.poll()
        if run.entity.status == "Running" and code is not None:
            run.entity._status = "Completed" if code == 0 else "Failed"
        return run.entity

    def logs(self, name: str) -> str:
        return self.runs[name].log.read_text(errors="replace")

    def begin_cancel(self, name: str, **_: Any) -> Poller:
        run = self.runs[name]
        self.record("begin_cancel", name=name)
        run.proc.terminate()
        run.proc.wait(timeout=30)
        run.entity._status = "Canceled"
        return Poller()

    def download(self, name: str, *, download_path: str = ".", output_name: str | None = None):
        self.record("download", name=name, output_name=output_name)
        run = self.runs[name]
        if run.entity.status not in ("Completed", "Failed", "Canceled"):
            raise rejected(f"job {name} is not in a terminal state")
        if output_name != "score":
            raise rejected(f"job {name} has no output {output_name!r}")
        shutil.copytree(run.outputs, Path(download_path) / "named-outputs" / output_name)

    def close(self) -> None:
        """Stop what is still running (test teardown) and remove the job folders."""
        for run in self.runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait(timeout=30)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class BatchEndpointOps(Group):
    name = "batch_endpoints"

    def __init__(self, client: RecordingMLClient) -> None:
        super().__init__(client)
        self.endpoints: dict[str, Any] = {}

    def begin_create_or_update(self, endpoint: Any) -> Poller:
        from azure.ai.ml import load_batch_endpoint

        check_name(endpoint.name)
        body, loaded = roundtrip(endpoint, load_batch_endpoint)
        self.record("begin_create_or_update", name=endpoint.name, body=body)
        default = (loaded.defaults or {}).get("deployment_name")
        if default and default not in self.client.batch_deployments.names(loaded.name):
            raise rejected(f"default deployment {default} does not exist")
        loaded._scoring_uri = f"https://{loaded.name}.westeurope.inference.ml.azure.com/jobs"
        loaded._provisioning_state = "Succeeded"
        self.endpoints[loaded.name] = loaded
        return self.lro(loaded)

    def get(self, name: str) -> Any:
        self.record("get", name=name)
        if name not in self.endpoints:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(message=f"batch endpoint {name} not found")
        return self.endpoints[name]

    def invoke(
        self, endpoint_name: str, *, deployment_name: str | None = None, inputs: Any = None, **kw
    ) -> Any:
        from azure.ai.ml._schema._deployment.batch.batch_job import BatchJobSchema
        from azure.ai.ml.constants._common import BASE_PATH_CONTEXT_KEY, PARAMS_OVERRIDE_KEY
        from azure.ai.ml.entities import PipelineJob
        from azure.ai.ml.entities._deployment.batch_job import BatchJob

        endpoint = self.get(endpoint_name)
        name = deployment_name or (endpoint.defaults or {}).get("deployment_name")
        deployment = self.client.batch_deployments.deployments.get((endpoint_name, name or ""))
        if deployment is None:
            raise rejected(f"batch endpoint {endpoint_name} has no deployment {name}")
        override = [{"input_data": inputs or {}}]
        context = {BASE_PATH_CONTEXT_KEY: Path("."), PARAMS_OVERRIDE_KEY: override}
        body = BatchJobSchema(context=context).load(data={})  # the SDK's wire body
        self.record("invoke", endpoint_name=endpoint_name, deployment_name=name, body=body)
        folders = [i.path for i in (inputs or {}).values() if Path(str(i.path)).is_dir()]
        if len(folders) != 1 or len(inputs) != 1:
            raise rejected("a model deployment takes one input (the stand-in: a folder)")
        job = PipelineJob(name=f"batchjob-{secrets.token_hex(4)}")
        self.client.jobs.start(job, *driver_command(deployment, folders[0], self.client))
        return BatchJob(name=job.name, status="Running", type="Microsoft.MachineLearning/jobs")


def driver_command(deployment: Any, folder: str, client: Any) -> tuple[list[str], str, dict]:
    """argv, cwd and environment of the batch driver for one invocation."""
    code = deployment.code_configuration
    settings = deployment.settings
    model = client.models.require(str(deployment.model))
    spec = {
        "script": str(Path(code.code) / code.scoring_script),
        "inputs": folder,
        "mini_batch_size": settings.mini_batch_size,
        "max_retries": settings.retry_settings.max_retries,
        "output_file_name": settings.output_file_name,
    }
    env = {
        **{k: str(v) for k, v in (settings.environment_variables or {}).items()},
        "AZUREML_MODEL_DIR": str(Path(model.path).resolve()),
        "PYTHONPATH": str(code.code),
    }
    return [sys.executable, "-m", "tests.azure_standin_jobs", json.dumps(spec)], str(code.code), env


class BatchDeploymentOps(Group):
    name = "batch_deployments"

    def __init__(self, client: RecordingMLClient) -> None:
        super().__init__(client)
        self.deployments: dict[tuple[str, str], Any] = {}

    def names(self, endpoint: str) -> set[str]:
        return {name for (e, name) in self.deployments if e == endpoint}

    def begin_create_or_update(self, deployment: Any, **_: Any) -> Poller:
        from azure.ai.ml.entities import ModelBatchDeployment

        check_name(deployment.name, deployment=True)
        deployment._to_rest_object(location="westeurope")  # the SDK's checks before sending
        body = json.loads(json.dumps(deployment._to_dict(), default=str))
        self.record("begin_create_or_update", name=deployment.name, body=body)
        # `_to_dict` writes instance_count twice (resources and settings); the schema refuses
        # that, so the settings' copy is the one loaded back
        loaded = ModelBatchDeployment._load(
            data={k: v for k, v in body.items() if k != "resources"}
        )
        if loaded.endpoint_name not in self.client.batch_endpoints.endpoints:
            raise rejected(f"batch endpoint {loaded.endpoint_name} does not exist")
        self.client.models.require(str(loaded.model))
        if not loaded.compute:
            raise rejected("a batch deployment needs a compute cluster")
        code = loaded.code_configuration
        if code is not None:
            if not loaded.environment:
                raise rejected("a scoring script needs an environment")
            if not (Path(code.code) / code.scoring_script).is_file():
                raise rejected(f"no scoring script {code.scoring_script} in {code.code}")
        loaded._provisioning_state = "Succeeded"
        self.deployments[(loaded.endpoint_name, loaded.name)] = loaded
        return self.lro(loaded)

    def get(self, name: str, endpoint_name: str) -> Any:
        self.record("get", name=name, endpoint_name=endpoint_name)
        if (endpoint_name, name) not in self.deployments:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(message=f"batch deployment {name} not found")
        return self.deployments[(endpoint_name, name)]

    def list(self, endpoint_name: str) -> list[Any]:
        self.record("list", endpoint_name=endpoint_name)
        return [d for (e, _), d in sorted(self.deployments.items()) if e == endpoint_name]

    def begin_delete(self, name: str, endpoint_name: str) -> Poller:
        self.get(name, endpoint_name)
        self.record("begin_delete", name=name, endpoint_name=endpoint_name)
        endpoint = self.client.batch_endpoints.endpoints[endpoint_name]
        if (endpoint.defaults or {}).get("deployment_name") == name:
            raise rejected(f"deployment {name} is the default of batch endpoint {endpoint_name}")
        del self.deployments[(endpoint_name, name)]
        return self.lro(None)


def main(spec: dict[str, Any]) -> int:
    """Azure's batch driver, in one process: init() once, run() per mini-batch."""
    module_spec = importlib.util.spec_from_file_location("batch_score", spec["script"])
    script = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(script)
    script.init()
    files = sorted(str(p) for p in Path(spec["inputs"]).rglob("*") if p.is_file())
    size, output = spec["mini_batch_size"], Path(os.environ["MLOPS_STANDIN_OUTPUTS"])
    for start in range(0, len(files), size):
        batch = files[start : start + size]
        for attempt in range(spec["max_retries"] + 1):
            try:
                lines = script.run(batch)
                break
            except Exception:
                print(f"mini-batch {batch} attempt {attempt + 1} failed:", flush=True)
                traceback.print_exc()
        else:
            return 1
        with (output / spec["output_file_name"]).open("a") as out:
            out.writelines(f"{line}\n" for line in lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
