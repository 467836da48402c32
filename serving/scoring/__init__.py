"""Framework-free scoring code: request parsing, signature checks, image decoding, model
loading, log reading.

No web framework and no Dagster here: training, batch scoring and monitoring code
import these modules to read and score data exactly the way the online endpoint does.
"""

from serving.scoring.errors import InputError
from serving.scoring.inference_log import iter_records
from serving.scoring.model import ModelLoadError, ServedModel
from serving.scoring.parsing import Table, parse_azureml, parse_mlflow
from serving.scoring.schema import ColumnSpec, InputSchema

__all__ = [
    "ColumnSpec",
    "InputError",
    "InputSchema",
    "ModelLoadError",
    "ServedModel",
    "Table",
    "iter_records",
    "parse_azureml",
    "parse_mlflow",
]
