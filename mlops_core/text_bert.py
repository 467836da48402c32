"""The BERT family: a WordPiece tokenizer and a 2-layer BERT trained from scratch, no Dagster.

Small on purpose (hidden 128, 2 layers, 2 heads, about 1.5M parameters with an
8,000-piece vocabulary): 5,000 review snippets train for two epochs in about 40 s on
one core (0.74 holdout accuracy). The tokenizer is trained on the training texts, so words the
model never saw split into pieces (or [UNK]); the OOV rate is measured on whole
words against the training vocabulary. `pretrained=<local folder>` swaps in any
Hugging Face sequence-classification checkpoint that has a `tokenizer.json`
(nothing is downloaded). Inference runs in batches of 64 texts sorted by length
and padded to the longest in the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_core.text_models import BATCH, TextClassifier, fit_projection, normalize, set_threads

if TYPE_CHECKING:
    import torch

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PROJECTION_SAMPLE = 2000


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A BERT-style WordPiece tokenizer ([CLS] text [SEP]) trained on normalized texts.

    Deterministic: the trainer numbers the "##x" continuation pieces in hash-map order and
    breaks ties between equally frequent merges by those numbers, so the same texts gave
    different vocabularies run to run (huggingface/tokenizers#1794). Declaring every "##x"
    up front fixes their numbers; the tokenizer is then rebuilt from the vocabulary so only
    the real special tokens are special.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer

    def configured(model: Any) -> Any:
        tokenizer = Tokenizer(model)
        # the same normalisation as `normalize`, so raw text tokenizes like training text
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return tokenizer

    pieces = ["##" + c for c in sorted({c for t in texts for c in t if not c.isspace()})]
    trainer = WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS + pieces, show_progress=False
    )
    draft = configured(models.WordPiece(unk_token="[UNK]"))
    draft.train_from_iterator(texts, trainer)
    tokenizer = configured(models.WordPiece(vocab=draft.get_vocab(), unk_token="[UNK]"))
    tokenizer.add_special_tokens(SPECIALS)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def build_model(vocab_size: int, classes: list[str], max_length: int, pad_id: int) -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=512, max_position_embeddings=max_length + 2, pad_token_id=pad_id,
        num_labels=len(classes), id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
    )  # fmt: skip
    return BertForSequenceClassification(config)


def load_pretrained(folder: str, classes: list[str]) -> tuple[Any, Any]:
    """(tokenizer, model) of a local checkpoint; a head of another size is re-initialised."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load would fill the scoring server's log
    path = Path(folder)
    if not (path / "tokenizer.json").exists():
        raise FileNotFoundError(f"{path} has no tokenizer.json (a local checkpoint folder)")
    model = AutoModelForSequenceClassification.from_pretrained(
        str(path), num_labels=len(classes), id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)}, ignore_mismatched_sizes=True,
        local_files_only=True,
    )  # fmt: skip
    return Tokenizer.from_file(str(path / "tokenizer.json")), model


class BertTextClassifier(TextClassifier):
    family = "bert"
    _heavy = ("tokenizer", "model", "projection")

    def __init__(self, classes: list[str], max_length: int, embedding_dims: int = 8):
        super().__init__(classes, max_length, embedding_dims)
        self.tokenizer: Any = None
        self.model: Any = None
        self.projection: tuple[np.ndarray, np.ndarray] | None = None

    def _prepare(self, tokenizer: Any, model: Any) -> None:
        # truncation is ours (counting pieces first), padding is per batch
        tokenizer.no_truncation()
        tokenizer.no_padding()
        limit = getattr(model.config, "max_position_embeddings", self.max_length)
        self.max_length = min(self.max_length, int(limit))
        self.tokenizer, self.model = tokenizer, model.eval()

    def encode(self, texts: list[str]) -> tuple[list[list[int]], list[int]]:
        """(ids cut to max_length keeping the closing special token, pieces before the cut)."""
        unk = self.tokenizer.token_to_id("[UNK]") or 0
        ids, pieces = [], []
        for enc in self.tokenizer.encode_batch([normalize(t) for t in texts]):
            seq = enc.ids
            if len(seq) > self.max_length:
                seq = seq[: self.max_length - 1] + seq[-1:]
            ids.append(seq or [unk])
            pieces.append(len(enc.special_tokens_mask) - sum(enc.special_tokens_mask))
        return ids, pieces

    def _pad(self, batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        pad = self.model.config.pad_token_id or 0
        width = max(len(s) for s in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, seq in enumerate(batch):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        return input_ids, mask

    def _run(self, ids: list[list[int]], monitor: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Softmax probabilities and mean-pooled last hidden states, batched by length."""
        import torch

        n, hidden = len(ids), self.model.config.hidden_size
        proba = np.zeros((n, len(self.classes)), dtype=np.float32)
        pooled = np.zeros((n, hidden), dtype=np.float32) if monitor else None
        order = sorted(range(n), key=lambda i: len(ids[i]))  # less padding per batch
        with torch.inference_mode():
            for start in range(0, n, BATCH):
                idx = order[start : start + BATCH]
                input_ids, mask = self._pad([ids[i] for i in idx])
                out = self.model(
                    input_ids=input_ids, attention_mask=mask, output_hidden_states=monitor
                )
                proba[idx] = torch.softmax(out.logits.float(), dim=1).numpy()
                if pooled is not None:
                    m = mask.unsqueeze(-1).float()
                    states = out.hidden_states[-1].float()
                    pooled[idx] = ((states * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
        return proba, pooled

    def _forward(
        self, texts: list[str], monitor: bool
    ) -> tuple[np.ndarray, list[int], np.ndarray | None]:
        ids, pieces = self.encode(texts)
        proba, pooled = self._run(ids, monitor)
        emb = None
        if pooled is not None and self.projection is not None:
            mean, components = self.projection
            emb = (pooled - mean) @ components.T
        return proba, pieces, emb

    def _save(self, folder: Path) -> dict[str, str]:
        checkpoint = folder / "bert"
        self.model.save_pretrained(checkpoint)
        self.tokenizer.save(str(checkpoint / "tokenizer.json"))
        projection = folder / "projection.npz"
        if self.projection is None:
            raise ValueError("the embedding projection is fitted by fit_bert before saving")
        np.savez(projection, mean=self.projection[0], components=self.projection[1])
        return {"bert": str(checkpoint), "projection": str(projection)}

    def _load(self, artifacts: dict[str, str]) -> None:
        tokenizer, model = load_pretrained(artifacts["bert"], self.classes)
        self._prepare(tokenizer, model)
        with np.load(artifacts["projection"]) as saved:
            self.projection = (saved["mean"], saved["components"])


def fit_bert(
    texts: list[str],
    y: np.ndarray,
    classes: list[str],
    *,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 5e-4,
    max_length: int = 64,
    vocab_size: int = 8000,
    embedding_dims: int = 8,
    pretrained: str | None = None,
    seed: int = 0,
    progress: Any = None,
) -> BertTextClassifier:
    """Train with AdamW (linear warm-up over 10% of the steps, then linear decay)."""
    import torch

    from mlops_core.text_models import word_vocabulary

    set_threads()
    torch.manual_seed(seed)
    clf = BertTextClassifier(classes, max_length, embedding_dims)
    if pretrained:
        tokenizer, model = load_pretrained(pretrained, classes)
    else:
        tokenizer = train_tokenizer([normalize(t) for t in texts], vocab_size)
        pad = tokenizer.token_to_id("[PAD]")
        model = build_model(tokenizer.get_vocab_size(), classes, max_length, pad)
    clf._prepare(tokenizer, model)
    ids, _ = clf.encode(texts)
    labels = torch.as_tensor(y, dtype=torch.long)
    steps = max(1, epochs * -(-len(ids) // batch_size))
    warmup = max(1, steps // 10)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup or 1)))
    )
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order, total = torch.randperm(len(ids), generator=generator).tolist(), 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            input_ids, mask = clf._pad([ids[i] for i in idx])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels[idx]).loss
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        if progress:
            progress(epoch + 1, total / max(1, len(ids)))
    model.eval()
    clf.vocabulary = frozenset(word_vocabulary(texts))
    sample = np.random.default_rng(seed).permutation(len(ids))[:PROJECTION_SAMPLE]
    _, pooled = clf._run([ids[i] for i in sample], monitor=True)
    clf.projection = fit_projection(pooled, embedding_dims)
    return clf
