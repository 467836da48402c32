"""The TF-IDF family: word and bigram TF-IDF with logistic regression, no Dagster.

The fast baseline the BERT family must beat (seconds to train). Tokens are the
words of the normalized text (regex \\w+), cut to `max_length`; the embedding is
a TruncatedSVD of the TF-IDF vector, fitted on the training texts. The three
fitted scikit-learn objects travel as one joblib artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlops_core.text_models import TextClassifier, word_vocabulary, words


class TfidfTextClassifier(TextClassifier):
    family = "tfidf"
    _heavy = ("vectorizer", "classifier", "svd")

    def __init__(self, classes: list[str], max_length: int, embedding_dims: int = 8):
        super().__init__(classes, max_length, embedding_dims)
        self.vectorizer: Any = None
        self.classifier: Any = None
        self.svd: Any = None

    def _prepare(self, texts: list[str]) -> tuple[list[str], list[int]]:
        """(word strings cut to max_length, words before the cut)."""
        split = [words(t) for t in texts]
        return [" ".join(w[: self.max_length]) for w in split], [len(w) for w in split]

    def _forward(
        self, texts: list[str], monitor: bool
    ) -> tuple[np.ndarray, list[int], np.ndarray | None]:
        docs, counts = self._prepare(texts)
        x = self.vectorizer.transform(docs)
        proba = np.zeros((len(docs), len(self.classes)), dtype=np.float64)
        if len(docs):
            # a class absent from training has no column: it keeps probability 0
            proba[:, self.classifier.classes_] = self.classifier.predict_proba(x)
        emb = self.svd.transform(x) if monitor and len(docs) else None
        return proba, counts, emb

    def _save(self, folder: Path) -> dict[str, str]:
        import joblib

        path = folder / "tfidf.joblib"
        joblib.dump(
            {"vectorizer": self.vectorizer, "classifier": self.classifier, "svd": self.svd}, path
        )
        return {"tfidf": str(path)}

    def _load(self, artifacts: dict[str, str]) -> None:
        import joblib

        parts = joblib.load(artifacts["tfidf"])
        self.vectorizer, self.classifier, self.svd = (
            parts["vectorizer"], parts["classifier"], parts["svd"]
        )  # fmt: skip


def fit_tfidf(
    texts: list[str],
    y: np.ndarray,
    classes: list[str],
    *,
    c: float = 4.0,
    max_length: int = 256,
    embedding_dims: int = 8,
    seed: int = 0,
) -> TfidfTextClassifier:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    clf = TfidfTextClassifier(classes, max_length, embedding_dims)
    docs, _ = clf._prepare(texts)
    # texts arrive as normalized words: single-letter words count too (the "t" of "don't")
    clf.vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, lowercase=False, token_pattern=r"(?u)\b\w+\b",
        dtype=np.float32,
    )  # fmt: skip
    x = clf.vectorizer.fit_transform(docs)
    clf.classifier = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)
    clf.svd = TruncatedSVD(n_components=embedding_dims, random_state=seed).fit(x)
    clf.vocabulary = frozenset(word_vocabulary(texts))
    return clf
