"""Azure ML's scoring contract for the models the local scoring server serves.

On an Azure ML online deployment (managed or Kubernetes) the Azure ML inference server
(`azmlinfsrv`, package `azureml-inference-server-http`) runs an entry script with `init()`
and `run()`; `score.py` here is that script. It loads the model from `AZUREML_MODEL_DIR`
and answers `POST /score` with the same decoders, validators, model code and JSON as the
local server (`serving.azureml.contract`). Keys, traffic split, mirroring and request ids
are the Azure endpoint's job there. `loopback.py` is a gunicorn config file that keeps a
local azmlinfsrv on 127.0.0.1 (docs/serving-clients.md, "On Azure ML: score.py").
"""
