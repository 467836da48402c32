"""Embedding drift: can a classifier tell the day's embeddings from the training reference's?

Purpose: one verdict for a whole embedding (k columns tested together), the way Evidently's
default embeddings method does it (`ModelDriftMethod` in evidently 0.7.23
`legacy/metrics/data_drift/embedding_drift_methods.py`: a domain classifier separating reference
from current rows; drift when its held-out ROC AUC > 0.55), with less noise and a guard for
small days. The test (`EmbeddingDriftMethod.test`):
- rows: at most `max_rows` per side (a seeded sample), so the cost is bounded;
- features: each component standardised on both sides pooled, plus its square (so a change of
  spread is seen too, which a linear model on the raw components misses), then whitened with
  the pooled covariance. No label is used, so this is the same for every permutation below;
- classifier: the difference of the class means in that whitened space, fitted on 4 folds and
  scored on the fifth (Fisher's linear discriminant with the pooled covariance, closed form);
  the score is the mean ROC AUC of the `folds` held-out folds (stratified, seeded);
- threshold: max(0.55, the AUC's (1 - alpha) quantile when nothing drifted), the quantile from
  the same procedure run on `permutations` random reassignments of the rows to the two sides
  (normal approximation: mean + z * std). On a 300-row day that quantile is ~0.56 and guards
  against the cross-validated AUC's own noise (std ~0.027); on 1000 rows per side 0.55 decides,
  as in Evidently. Drift when AUC > threshold.
Everything is vectorised over the permutations (one matrix product per fold); seeded, so the
same rows always give the same verdict. Measured agreement with Evidently: docs/nlp-drift.md.

Constraints: numpy and scipy only (no dagster, pandas, sklearn or evidently import).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from statistics import NormalDist

import numpy as np

DISPLAY_NAME = "domain classifier ROC AUC"
STATTEST = "domain_classifier"
EVIDENTLY_THRESHOLD = 0.55  # embedding_drift_methods.py: ModelDriftMethod.threshold
EVIDENTLY_BOOTSTRAP_ROWS = 1000  # embeddings_drift.py: model(bootstrap=reference rows < 1000)
RIDGE = 1e-6  # of the mean variance: squares of a two-valued component are collinear with it


@dataclass(frozen=True)
class EmbeddingDrift:
    score: float  # mean held-out ROC AUC of the domain classifier
    threshold: float  # max(floor, null quantile): drift when score > threshold
    null_mean: float  # the AUC over permuted sides (no drift by construction)
    null_std: float
    p_value: float  # share of permutations scoring >= score (with the observed one)
    n_reference: int
    n_current: int

    @property
    def drifted(self) -> bool:
        return self.score > self.threshold

    @property
    def z(self) -> float:
        return (self.score - self.null_mean) / self.null_std if self.null_std > 0 else 0.0


@dataclass(frozen=True)
class EmbeddingDriftMethod:
    threshold: float = EVIDENTLY_THRESHOLD  # the AUC floor: smaller separations are not drift
    alpha: float = 0.01  # one-sided level of the permutation quantile (a daily monitor)
    folds: int = 5
    permutations: int = 200
    max_rows: int = 1000  # per side, for the stored reference sample and the current rows
    seed: int = 0

    def to_dict(self) -> dict:
        return {"name": STATTEST, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict) -> EmbeddingDriftMethod:
        if raw.get("name", STATTEST) != STATTEST:
            raise ValueError(f"unknown embedding drift method: {raw.get('name')!r}")
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})

    def sample(self, values: np.ndarray, side: str) -> np.ndarray:
        """At most `max_rows` rows, a seeded choice in the original row order."""
        if len(values) <= self.max_rows:
            return values
        rng = np.random.default_rng([self.seed, 0 if side == "reference" else 1])
        return values[np.sort(rng.choice(len(values), self.max_rows, replace=False))]

    def test(self, reference: np.ndarray, current: np.ndarray) -> EmbeddingDrift:
        """The verdict for two [rows, k] arrays (current is sampled down to `max_rows`)."""
        current = self.sample(np.asarray(current, dtype=np.float64), "current")
        reference = np.asarray(reference, dtype=np.float64)
        n_ref, n_cur = len(reference), len(current)
        folds = min(self.folds, n_ref, n_cur)
        if folds < 2:
            raise ValueError(f"embedding drift needs >= 2 rows a side, got {n_ref} and {n_cur}")
        z = _whitened(reference, current)
        side = np.r_[np.zeros(n_ref, dtype=bool), np.ones(n_cur, dtype=bool)]
        rng = np.random.default_rng(self.seed)
        fold = np.empty(side.size, dtype=np.int64)
        fold[~side] = rng.permutation(n_ref) % folds
        fold[side] = rng.permutation(n_cur) % folds
        # row orders: the observed one first, then rows moved at random between the sides
        orders = np.tile(np.arange(side.size), (self.permutations + 1, 1))
        orders[1:] = rng.permuted(orders[1:], axis=1)
        aucs = _cv_auc(z, side, fold, orders, folds)
        score, null = float(aucs[0]), aucs[1:]
        mean, std = float(null.mean()), float(null.std(ddof=1))
        quantile = mean + NormalDist().inv_cdf(1 - self.alpha) * std
        return EmbeddingDrift(
            score=score,
            threshold=max(self.threshold, quantile),
            null_mean=mean,
            null_std=std,
            p_value=float((1 + np.count_nonzero(null >= score)) / (1 + null.size)),
            n_reference=n_ref,
            n_current=n_cur,
        )


def _whitened(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Pooled rows as standardised components and their squares, whitened (label-free)."""
    from scipy.linalg import solve_triangular

    x = np.vstack([reference, current])
    std = x.std(axis=0)
    x = x[:, std > 0]  # a component constant on both sides carries no signal
    z = (x - x.mean(axis=0)) / std[std > 0]
    f = np.hstack([z, z * z])
    f -= f.mean(axis=0)
    if f.shape[1] == 0:
        return f  # every score 0: AUC 0.5, no drift
    cov = f.T @ f / len(f)
    cov[np.diag_indices_from(cov)] += RIDGE * float(np.trace(cov)) / len(cov)
    return solve_triangular(np.linalg.cholesky(cov), f.T, lower=True).T


def _cv_auc(
    z: np.ndarray, side: np.ndarray, fold: np.ndarray, orders: np.ndarray, folds: int
) -> np.ndarray:
    """Mean held-out ROC AUC of the mean-difference classifier, one per row order.

    Row order b puts row `orders[b, i]` at position i; positions carry the sides and folds.
    """
    from scipy.stats import rankdata

    total = np.zeros(len(orders))
    for f in range(folds):
        test = fold == f
        ones, zeros = np.flatnonzero(~test & side), np.flatnonzero(~test & ~side)
        weights = np.zeros(orders.shape)  # class-mean difference as one matrix product
        np.put_along_axis(weights, orders[:, ones], 1.0 / ones.size, axis=1)
        np.put_along_axis(weights, orders[:, zeros], -1.0 / zeros.size, axis=1)
        scores = (z @ (weights @ z).T).T  # [orders, rows]: every row scored by each direction
        held_out = np.take_along_axis(scores, orders[:, np.flatnonzero(test)], axis=1)
        positive = side[test]
        n1, n0 = np.count_nonzero(positive), np.count_nonzero(~positive)
        ranks = rankdata(held_out, axis=1)  # ties (repeated texts) get their mean rank
        total += (ranks[:, positive].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return total / folds
