"""Text classifiers and their MLflow pyfunc contract, no Dagster.

Two families answer the same contract (the scoring server's text model,
serving/scoring/text_model.py): a small BERT trained from scratch (`mlops_core.text_bert`)
and TF-IDF with logistic regression (`mlops_core.text_tfidf`). The pyfunc takes
one `text` column and answers `label` and `probability`; `score_texts` adds,
from the same model pass, what the drift monitor watches: word pieces per text,
the share of words the model never saw in training (OOV) and a k-dimensional
projection of the sentence embedding. torch, transformers and scikit-learn load
with a model, never at import.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

try:  # the pyfunc base class when MLflow is there (training, serving); plain object if not
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover - MLflow is a dependency of every process that logs
    PythonModel = object  # type: ignore[assignment,misc]

FAMILIES = ("bert", "tfidf")
MAX_CHARS, MAX_TEXTS, EMBEDDING_DIMS = 2000, 256, 8
BATCH = 64
_WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    """Unicode NFKC, lowercase, whitespace collapsed: what both families see of a text."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def words(text: str) -> list[str]:
    """The lowercase words (regex \\w+) of a text, the unit of the OOV rate."""
    return _WORD.findall(normalize(text))


def word_vocabulary(texts: Iterable[str]) -> list[str]:
    """Every word of the training texts, sorted (saved with the model for the OOV rate)."""
    return sorted({w for t in texts for w in words(t)})


def oov_rate(text_words: list[str], vocabulary: frozenset[str]) -> float:
    """Share of a text's words not in the training vocabulary; 0.0 for a text with no words."""
    if not text_words:
        return 0.0
    return sum(w not in vocabulary for w in text_words) / len(text_words)


def set_threads() -> None:
    """Use the cores the process was given (OMP_NUM_THREADS), not every core of the host:
    training and scoring share machines with other processes."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))


def fit_projection(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA as (mean [d], components [k, d]) by SVD; signs fixed so refits agree."""
    x = np.asarray(embeddings, dtype=np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = np.zeros((k, x.shape[1]))
    components[: min(k, len(vt))] = vt[:k]
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    return mean.astype(np.float32), (components * np.where(signs == 0, 1, signs)[:, None]).astype(
        np.float32
    )


class TextClassifier(PythonModel):
    """The pyfunc base: subclasses implement `_forward`, `_save` and `_load`.

    Pickling keeps only the small configuration; the weights, tokenizer and
    vocabulary travel as MLflow artifacts and `load_context` rebuilds them.
    """

    family = ""
    _heavy: tuple[str, ...] = ()
    """Attributes rebuilt from artifacts, so they stay out of the pickle."""

    def __init__(self, classes: list[str], max_length: int, embedding_dims: int = EMBEDDING_DIMS):
        self.classes = list(classes)
        self.max_length = int(max_length)
        self.embedding_dims = int(embedding_dims)
        self.vocabulary: frozenset[str] = frozenset()

    def __getstate__(self) -> dict[str, Any]:
        drop = {"vocabulary", *self._heavy}
        return {k: v for k, v in self.__dict__.items() if k not in drop}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.vocabulary = frozenset()
        for name in self._heavy:
            setattr(self, name, None)

    # -- subclasses -------------------------------------------------------------------------
    def _forward(
        self, texts: list[str], monitor: bool
    ) -> tuple[np.ndarray, list[int], np.ndarray | None]:
        """(probabilities [N, classes], tokens per text, embeddings [N, k] or None)."""
        raise NotImplementedError

    def _save(self, folder: Path) -> dict[str, str]:
        raise NotImplementedError

    def _load(self, artifacts: dict[str, str]) -> None:
        raise NotImplementedError

    # -- artifacts --------------------------------------------------------------------------
    def save_artifacts(self, folder: str | Path) -> dict[str, str]:
        """Write the model's files under `folder`; returns the `artifacts` of log_model."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocabulary = folder / "vocabulary.json"
        vocabulary.write_text(json.dumps(sorted(self.vocabulary)))
        return {"vocabulary": str(vocabulary), **self._save(folder)}

    def load_context(self, context: Any) -> None:
        set_threads()
        self.vocabulary = frozenset(json.loads(Path(context.artifacts["vocabulary"]).read_text()))
        self._load(context.artifacts)

    # -- the contract -----------------------------------------------------------------------
    def predict_proba_texts(self, texts: list[str]) -> np.ndarray:
        """Class probabilities [N, len(classes)], columns in `classes` order."""
        return self._forward(list(texts), monitor=False)[0]

    def _answers(self, proba: np.ndarray) -> list[dict[str, Any]]:
        best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
        return [
            # rounded: an answer must not depend on how requests were batched together
            {"label": self.classes[i], "probability": round(float(p), 6)}
            for i, p in zip(best.tolist(), proba[np.arange(len(best)), best].tolist(), strict=True)
        ]

    def predict_texts(self, texts: list[str]) -> list[dict[str, Any]]:
        """Per text its label and that label's probability."""
        return self._answers(self.predict_proba_texts(texts))

    def score_texts(self, texts: list[str]) -> tuple[list[dict[str, Any]], dict[str, list]]:
        """The answers and the monitoring columns (tokens, oov_rate, emb_*) in one pass."""
        texts = list(texts)
        proba, tokens, emb = self._forward(texts, monitor=True)
        columns: dict[str, list] = {
            "tokens": [int(n) for n in tokens],
            "oov_rate": [round(oov_rate(words(t), self.vocabulary), 6) for t in texts],
        }
        emb = emb if emb is not None else np.zeros((len(texts), self.embedding_dims))
        for j in range(self.embedding_dims):
            columns[f"emb_{j}"] = [round(float(v), 6) for v in emb[:, j]]
        return self._answers(proba), columns

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        import pandas as pd

        rows = self.predict_texts([str(t) for t in model_input["text"]])
        return pd.DataFrame(rows, columns=["label", "probability"])


def fit(
    family: str,
    texts: list[str],
    labels: list[str],
    classes: list[str],
    params: dict[str, Any],
    progress: Any = None,
) -> TextClassifier:
    """Train a family on labeled texts; `params` as in the NLP scenario's DEFAULT_PARAMS.

    `progress(epoch, loss)` is called per epoch (BERT only). For BERT, a `pretrained`
    param naming a local folder (a Hugging Face checkpoint with tokenizer.json) fine-tunes
    that checkpoint instead of training a tokenizer and a small BERT from scratch.
    """
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"training labels {unknown} are not classes of the model {classes}")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in labels], dtype=np.int64)
    k = int(params.get("embedding_dims", EMBEDDING_DIMS))
    seed = int(params.get("seed", 0))
    if family == "bert":
        from mlops_core.text_bert import fit_bert

        return fit_bert(
            texts, y, classes,
            epochs=int(params.get("epochs", 2)), batch_size=int(params.get("batch_size", 32)),
            learning_rate=float(params.get("learning_rate", 5e-4)),
            max_length=int(params.get("max_length", 64)),
            vocab_size=int(params.get("vocab_size", 8000)), embedding_dims=k,
            pretrained=params.get("pretrained") or None, seed=seed, progress=progress,
        )  # fmt: skip
    if family == "tfidf":
        from mlops_core.text_tfidf import fit_tfidf

        return fit_tfidf(
            texts, y, classes, c=float(params.get("C", 4.0)),
            max_length=int(params.get("max_words", 256)), embedding_dims=k, seed=seed,
        )  # fmt: skip
    raise ValueError(f"unknown model family {family!r}; choose one of {list(FAMILIES)}")


def metadata(
    *,
    max_chars: int = MAX_CHARS,
    max_length: int = 64,
    max_texts: int = MAX_TEXTS,
    embedding_dims: int = EMBEDDING_DIMS,
    preload: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The MLmodel metadata the scoring server reads to accept and log texts for the model;
    `preload`: modules unpickling the model imports, which batch workers import once
    before they fork (`mlops_core.batch.model_modules`)."""
    return {
        "mlops_input": "text",
        "task": "classification",
        "max_chars": int(max_chars),
        "max_length": int(max_length),
        "max_texts": int(max_texts),
        "embedding_dims": int(embedding_dims),
        **({"mlops_preload": list(preload)} if preload else {}),
    }


PRELOAD: dict[str, tuple[str, ...]] = {
    "bert": ("torch", "transformers", "mlops_core.text_bert"),
    "tfidf": ("sklearn.linear_model", "sklearn.feature_extraction.text", "mlops_core.text_tfidf"),
}
"""What loading each family's pickled model imports (seconds for torch and transformers)."""


def pip_requirements(family: str = "bert") -> list[str]:
    from importlib.metadata import version

    packages = {
        "bert": ("torch", "transformers", "tokenizers", "safetensors"),
        "tfidf": ("scikit-learn", "scipy", "joblib"),
    }[family]
    return [f"{pkg}=={version(pkg)}" for pkg in (*packages, "numpy", "pandas", "mlflow")]
