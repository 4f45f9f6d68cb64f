"""Neural word alignment from encoder similarities: SimAlign, batched.

A re-implementation of SimAlign (Jalili Sabet et al., 2020, "SimAlign: High Quality Word
Alignments without Parallel Training Data using Static and Contextualized Embeddings")
that embeds many sentence pairs per forward pass instead of one pair per call.

Method, as in the ``simalign`` package:

1. Every word is split into subwords with the encoder's own tokenizer, one word at a
   time, exactly as ``tokenizer.tokenize(word)`` splits it (simalign does the same), so
   word boundaries are exact; the ids are those of that encoding (a piece the model
   does not know gets the unknown id). A word that yields no subword at all (an empty
   string, a lone control character) is given the tokenizer's unknown token, so every
   word has a vector and can be linked.
2. Each sentence is encoded as ``[cls/bos] subwords [sep/eos]`` (the tokenizer's own
   special tokens) and the hidden states of layer ``layer`` are taken (0 = embeddings).
   Only the first ``layer`` encoder layers are run.
3. Similarity of two units is ``(cos + 1) / 2`` in [0, 1]. Units are subwords
   (``token_level="subword"``, simalign's ``bpe``) or words, whose vector is the mean
   of their subword vectors (``token_level="word"``).
4. Links from the similarity matrix:

   * ``argmax`` (simalign's ``inter``/``a``): i-j is a link when j is the most similar
     target of i and i the most similar source of j;
   * ``itermax`` (simalign's ``itermax``/``i``): argmax, then one more argmax round
     over the still unaligned rows and columns, similarities of pairs with one side
     already aligned damped by 0.9 (simalign's alpha 0.9, max_count 2);
   * ``match`` (simalign's ``mwmf``/``m``): the maximum-weight bipartite matching
     (:func:`scipy.optimize.linear_sum_assignment`);
   * ``softmax`` (awesome-align's extraction, Dou & Neubig 2021): on the raw dot
     products of the vectors, each row is softmaxed over the targets and each column
     over the sources, and i-j is a link when both probabilities reach ``threshold``
     (default 1e-3, awesome-align's). It lets a word take several links, which suits
     pairs such as Chinese-English where one word often answers to two.

   At subword level, two words are linked when any of their subwords are.

Per-link score: the similarity of the linked units (for ``softmax``, the smaller of the
two probabilities); at subword level the highest such score among the subword pairs
that produced the word link. Always in [0, 1].

Long sentences are never truncated (simalign cuts them at the tokenizer's limit and
silently drops the words past it): a sentence with more subwords than the encoder takes
is embedded in overlapping windows (width: the encoder's limit, stride: half of it), and
each subword keeps its vector from the window where it lies farthest from a cut edge
(a sentence's own start and end are not cuts).

CPU speed: on the CPU the encoder's ``nn.Linear`` layers are routed through oneDNN
(``torch.ops.mkldnn._linear_pointwise``, the kernel torch's own compiler uses), which
picks AVX-512 code on any x86 CPU, where the default MKL GEMM may run AVX2 code (it does
on AMD EPYC: about half the speed). Same float32 arithmetic, summed in another order.
It is checked against ``F.linear`` at start-up and skipped, with a log line, where the
op is missing or disagrees; ``onednn=False`` turns it off.

Batching: pairs are taken ``batch_size * 16`` at a time; within that chunk, sentences
(and windows) are sorted by length and encoded ``2 * batch_size`` at a time, so a
forward pass holds the two sides of ``batch_size`` pairs with little padding. Results
come back in input order and do not depend on ``batch_size`` beyond float rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alignment.aligners.base import AlignerError, WordAligner
from alignment.aligners.onednn import use_onednn
from alignment.aligners.similarity import (
    LINKERS,
    METHODS,
    SOFTMAX_THRESHOLD,
    pick_windows,
    softmax_scores,
    window_starts,
)
from alignment.errors import SettingError
from alignment.records import Link, Links

logger = logging.getLogger(__name__)

TOKEN_LEVELS: tuple[str, ...] = ("subword", "word")


# Pairs per sorting chunk, as a multiple of batch_size.
_CHUNK_BATCHES = 16
# Word -> subword ids cache size (entries); cleared when full.
_CACHE_SIZE = 200_000
# Layer stacks of common encoder architectures, tried in order.
_LAYER_STACKS = ("encoder.layer", "encoder.layers", "transformer.layer", "layers")


@dataclass(frozen=True, slots=True)
class _Sentence:
    """A tokenised sentence: its subword ids and, per subword, the index of its word."""

    subword_ids: tuple[int, ...]
    word_of_subword: tuple[int, ...]
    n_words: int


# --------------------------------------------------------------------------- windows




# ---------------------------------------------------------------------- the aligner
#: Defaults by encoder shape ``(num_hidden_layers, hidden_size)``, measured on the
#: Hansards EN-FR gold (scripts/bench_simalign_aer.py, BENCHMARKS.md): for the 12-layer,
#: 384-wide family (multilingual-e5-small, Multilingual-MiniLM-L12-H384) word-level
#: argmax at layer 7 had the lowest AER (0.0660; layer 8: 0.0712, subword level at layer
#: 7: 0.0737).
FAMILY_DEFAULTS: dict[tuple[int, int], dict[str, Any]] = {
    (12, 384): {"layer": 7, "token_level": "word"},
}


def family_defaults(config: Any) -> dict[str, Any]:
    """Layer and token level for an encoder config: measured ones for the shapes in
    :data:`FAMILY_DEFAULTS`, else simalign's choice (layer 8 of 12, subword level),
    scaled to the encoder's depth (two thirds of its layers)."""
    n_layers = int(getattr(config, "num_hidden_layers", 12))
    hidden = int(getattr(config, "hidden_size", 0))
    measured = FAMILY_DEFAULTS.get((n_layers, hidden))
    if measured is not None:
        return dict(measured)
    return {"layer": max(1, round(n_layers * 2 / 3)), "token_level": "subword"}



class NeuralAligner(WordAligner):
    """SimAlign word alignment over a Hugging Face encoder, many pairs per forward pass.

    Args:
        model: encoder name on the Hugging Face hub, or a local directory, loaded with
            ``AutoTokenizer`` / ``AutoModel``.
        layer: hidden layer whose vectors are compared (0 = embeddings, at most the
            encoder's ``num_hidden_layers``); ``None`` picks the encoder family's
            default (:func:`family_defaults`).
        method: ``argmax``, ``itermax``, ``match`` or ``softmax`` (module docstring).
        threshold: ``softmax`` only: the probability both directions must reach.
        batch_size: sentence pairs per forward pass.
        device: torch device; default ``cuda`` when available, else ``cpu``.
        token_level: ``subword`` (simalign's ``bpe``) or ``word``; ``None`` picks the
            encoder family's default.
        onednn: on the CPU, run the linear layers through oneDNN (see the module
            docstring); no effect on other devices.

    Raises:
        ValueError: a bad ``method``, ``token_level``, ``batch_size``, ``device`` or
            ``layer`` (named with the valid choices).
        AlignerError: the encoder or its tokenizer cannot be loaded.
    """

    name = "simalign"
    #: No per-sentence length limit: long sentences are embedded in windows.
    max_tokens: int | None = None
    needs_whole_corpus = False

    def __init__(
        self,
        model: str = "xlm-roberta-base",
        layer: int | None = None,
        method: str = "argmax",
        batch_size: int = 32,
        device: str | None = None,
        token_level: str | None = None,
        *,
        onednn: bool = True,
        threshold: float = SOFTMAX_THRESHOLD,
    ) -> None:
        if method not in METHODS:
            raise SettingError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if not 0.0 < threshold < 1.0:
            raise SettingError(f"threshold must be in (0, 1), got {threshold!r}")
        self.threshold = threshold
        if token_level is not None and token_level not in TOKEN_LEVELS:
            raise SettingError(
                f"unknown token_level {token_level!r}; choose one of {', '.join(TOKEN_LEVELS)}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SettingError(f"batch_size must be a positive integer, got {batch_size!r}")
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int)):
            raise SettingError(f"layer must be an integer, got {layer!r}")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self._device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise SettingError(
                f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps'"
            ) from err

        self.model_name = str(model)
        self.method = method
        self.batch_size = batch_size
        self._tokenizer, self._model = _load(self.model_name)

        n_layers = getattr(self._model.config, "num_hidden_layers", None)
        if not isinstance(n_layers, int):
            raise AlignerError(
                f"the encoder {self.model_name!r} has no integer num_hidden_layers in its "
                "config; use an encoder model (BERT, XLM-R and the like)"
            )
        family = family_defaults(self._model.config)
        layer = family["layer"] if layer is None else layer
        self.token_level = family["token_level"] if token_level is None else token_level
        token_level = self.token_level
        if not 0 <= layer <= n_layers:
            raise SettingError(
                f"layer {layer} is out of range for {self.model_name!r}, which has "
                f"{n_layers} hidden layers; choose 0 (embeddings) to {n_layers}"
            )
        self.layer = layer

        self._prefix, self._suffix = _special_tokens(self._tokenizer, self.model_name)
        self._pad_id = _pad_id(self._tokenizer, self._model)
        self._unk_id = self._tokenizer.unk_token_id
        if self._unk_id is None:
            raise AlignerError(
                f"the tokenizer of {self.model_name!r} has no unknown token; the aligner "
                "needs one for words that yield no subwords"
            )
        #: Most subwords one forward pass takes (special tokens excluded); longer
        #: sentences are embedded in windows of this width.
        self.max_subwords = _max_subwords(
            self._model, self._tokenizer, len(self._prefix) + len(self._suffix), self.model_name
        )
        self._model.eval()
        try:
            self._model.to(self._device)
        except (AssertionError, RuntimeError) as err:  # e.g. torch built without CUDA
            raise SettingError(f"device {device!r} is not usable here: {err}") from err
        self._truncate_layers(n_layers)
        #: Number of linear layers routed through oneDNN (0: torch's default GEMM).
        self.onednn_linears = (
            use_onednn(self._model) if onednn and self._device.type == "cpu" else 0
        )
        self._cache: dict[str, tuple[int, ...]] = {}
        logger.info(
            "simalign: %s, layer %d of %d, method %s, %s level, %d subwords a window, on %s"
            " (%d linear layers on oneDNN)",
            self.model_name, self.layer, n_layers, method, token_level,
            self.max_subwords, self._device, self.onednn_linears,
        )

    # ------------------------------------------------------------------ public API

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Links]:
        """Align ``src[k]`` with ``tgt[k]`` for every k; an empty side gives empty links."""
        self._check_lengths(src, tgt)
        for side, name in ((src, "source"), (tgt, "target")):
            for k, words in enumerate(side):
                if isinstance(words, str):
                    raise ValueError(
                        f"{name} sentence {k} is a string; pass a sequence of tokens "
                        f"(e.g. text.split())"
                    )
        out: list[Links] = []
        chunk = self.batch_size * _CHUNK_BATCHES
        for start in range(0, len(src), chunk):
            out.extend(self._align_chunk(src[start : start + chunk], tgt[start : start + chunk]))
        return out

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[torch.Tensor]:
        """Layer-``layer`` vectors of each sentence's subwords, windowed where needed.

        Returns one float tensor of shape ``(n_subwords, hidden)`` per sentence, on the
        CPU (``(0, hidden)`` for an empty sentence).
        """
        prepared = self._prepare(sentences)
        with torch.inference_mode():
            vectors = self._encode_ids([s.subword_ids for s in prepared])
        # Cloned outside inference mode: ordinary tensors, not views of a whole batch.
        return [v.cpu().clone() for v in vectors]

    def subword_ids(self, words: Sequence[str]) -> list[tuple[int, ...]]:
        """The subword ids of each word (the unknown token for a word that has none)."""
        self._fill_cache(words)
        return [self._cache[w] for w in words]

    # ----------------------------------------------------------------- internals

    def _truncate_layers(self, n_layers: int) -> None:
        """Drop the encoder layers above ``layer`` (we own the model), if safe."""
        if self.layer == n_layers:
            return
        for path in _LAYER_STACKS:
            parent: Any = self._model
            *head, last = path.split(".")
            for attr in head:
                parent = getattr(parent, attr, None)
            stack = getattr(parent, last, None)
            if isinstance(stack, torch.nn.ModuleList) and len(stack) == n_layers:
                setattr(parent, last, torch.nn.ModuleList(list(stack)[: self.layer]))
                break
        else:
            logger.info("simalign: no known layer stack in %s; running all layers", self.model_name)
            return
        # Check the cut model still reports one hidden state per layer kept.
        probe = torch.tensor([[*self._prefix, self._unk_id, *self._suffix]], device=self._device)
        try:
            with torch.inference_mode():
                hidden = self._model(input_ids=probe, output_hidden_states=True).hidden_states
            ok = len(hidden) == self.layer + 1
        except Exception:  # a model that indexes its layers by config count
            ok = False
        if not ok:
            setattr(parent, last, stack)
            logger.info("simalign: layer truncation not supported by %s; running all layers",
                        self.model_name)

    def _fill_cache(self, words: Sequence[str]) -> None:
        missing = list(dict.fromkeys(w for w in words if w not in self._cache))
        if not missing:
            return
        for w in missing:
            if not isinstance(w, str):
                raise ValueError(f"tokens must be strings, got {w!r} ({type(w).__name__})")
        if len(self._cache) + len(missing) > _CACHE_SIZE:
            self._cache.clear()
        # Same segmentation as tokenizer.tokenize(word), but with the real ids (a piece
        # the model does not know maps to the unknown id, not to a look-alike piece).
        encoded = self._tokenizer(missing, add_special_tokens=False)["input_ids"]
        for w, ids in zip(missing, encoded, strict=True):
            self._cache[w] = tuple(ids) if ids else (self._unk_id,)

    def _prepare(self, sentences: Sequence[Sequence[str]]) -> list[_Sentence]:
        self._fill_cache([w for words in sentences for w in words])
        out = []
        for words in sentences:
            ids: list[int] = []
            word_of: list[int] = []
            for i, w in enumerate(words):
                pieces = self._cache[w]
                ids.extend(pieces)
                word_of.extend([i] * len(pieces))
            out.append(_Sentence(tuple(ids), tuple(word_of), len(words)))
        return out

    def _forward(self, batch: list[tuple[int, ...]]) -> torch.Tensor:
        """Hidden states of layer ``layer`` for a batch of subword-id sequences."""
        longest = max(len(ids) for ids in batch)
        width = len(self._prefix) + longest + len(self._suffix)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            seq = [*self._prefix, *ids, *self._suffix]
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        out = self._model(
            input_ids=input_ids.to(self._device),
            attention_mask=mask.to(self._device),
            output_hidden_states=True,
        )
        return out.hidden_states[self.layer]

    def _encode_ids(self, sequences: list[tuple[int, ...]]) -> list[torch.Tensor]:
        """Subword vectors of each id sequence, long ones embedded in windows."""
        width = self.max_subwords
        # Segments: (sequence index, window start, ids); a fitting sequence is one segment.
        segments: list[tuple[int, int, tuple[int, ...]]] = []
        starts_of: list[list[int]] = []
        for k, ids in enumerate(sequences):
            starts = window_starts(len(ids), width) if ids else []
            starts_of.append(starts)
            segments.extend((k, s, ids[s : s + width]) for s in starts)
            if len(starts) > 1:
                logger.debug("simalign: %d subwords embedded in %d windows", len(ids), len(starts))
        vectors: list[Any] = [None] * len(segments)
        order = sorted(range(len(segments)), key=lambda i: len(segments[i][2]))
        step = 2 * self.batch_size
        offset = len(self._prefix)
        with torch.inference_mode():
            for b in range(0, len(order), step):
                batch = order[b : b + step]
                hidden = self._forward([segments[i][2] for i in batch])
                for row, i in enumerate(batch):
                    vectors[i] = hidden[row, offset : offset + len(segments[i][2])]
            hidden_size = self._model.config.hidden_size
            out: list[Any] = []
            seg = 0
            for ids, starts in zip(sequences, starts_of, strict=True):
                if not starts:
                    out.append(torch.zeros((0, hidden_size), device=self._device))
                elif len(starts) == 1:
                    out.append(vectors[seg])
                else:
                    choice = pick_windows(len(ids), width, starts)
                    rows = torch.empty(
                        (len(ids), hidden_size), dtype=vectors[seg].dtype, device=self._device
                    )
                    for w, start in enumerate(starts):
                        where = torch.from_numpy(np.flatnonzero(choice == w)).to(self._device)
                        rows[where] = vectors[seg + w][where - start]
                    out.append(rows)
                seg += len(starts)
        return out

    def _align_chunk(
        self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]
    ) -> list[Links]:
        src_prep = self._prepare(src)
        tgt_prep = self._prepare(tgt)
        todo = [k for k in range(len(src)) if src_prep[k].n_words and tgt_prep[k].n_words]
        sequences = [s.subword_ids for k in todo for s in (src_prep[k], tgt_prep[k])]
        vectors = self._encode_ids(sequences)
        out = [Links() for _ in range(len(src))]
        linker = LINKERS.get(self.method)
        with torch.inference_mode():
            for n, k in enumerate(todo):
                x, y = vectors[2 * n], vectors[2 * n + 1]
                s, t = src_prep[k], tgt_prep[k]
                if self.token_level == "word":
                    x = _mean_by_word(x, s)
                    y = _mean_by_word(y, t)
                if linker is None:  # softmax
                    sim = softmax_scores((x.float() @ y.float().T).cpu().numpy())
                    cells = sim >= self.threshold
                else:
                    sim = _similarity(x, y)
                    cells = linker(sim)
                out[k] = _word_links(cells, sim, s, t, self.token_level == "subword")
        return out


# ------------------------------------------------------------------------ helpers


def _load(model: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        encoder = AutoModel.from_pretrained(model)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError, ...
        raise AlignerError(
            f"could not load the encoder {model!r} ({type(err).__name__}: {err}). Its weights "
            "must be in a local directory (pass its path) or downloadable from the Hugging "
            "Face hub; on an offline machine, copy the model directory over first"
        ) from err
    return tokenizer, encoder


def _special_tokens(tokenizer: Any, model: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids the tokenizer puts before and after a single sequence (e.g. <s> ... </s>).

    Read off the tokenizer itself (encoding a probe word with and without special
    tokens), which works for BERT- and XLM-R-style tokenizers alike and across
    transformers versions (``build_inputs_with_special_tokens`` is gone from the
    tokenizers-backed classes in transformers 5).
    """
    probe = "hello"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    if plain:
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return tuple(full[:start]), tuple(full[start + len(plain) :])
    raise AlignerError(
        f"cannot tell which special tokens the tokenizer of {model!r} adds around a "
        f"sentence (encoded {probe!r} as {plain} alone and {full} with special tokens)"
    )


def _pad_id(tokenizer: Any, model: Any) -> int:
    for value in (tokenizer.pad_token_id, getattr(model.config, "pad_token_id", None)):
        if isinstance(value, int):
            return value
    return 0  # masked out by the attention mask


def _max_subwords(model: Any, tokenizer: Any, n_special: int, name: str) -> int:
    """Subwords one forward pass can take, special tokens excluded.

    The smaller of the position table (``max_position_embeddings`` less the offset that
    RoBERTa-style models skip, ``padding_idx + 1``) and ``tokenizer.model_max_length``.
    """
    limits = []
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if isinstance(max_pos, int) and max_pos > 0:
        table = getattr(getattr(model, "embeddings", None), "position_embeddings", None)
        offset = 0
        if isinstance(table, torch.nn.Embedding) and table.padding_idx is not None:
            offset = table.padding_idx + 1
        limits.append(max_pos - offset)
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    if not limits:
        logger.warning("simalign: %s states no length limit; assuming 512 tokens", name)
        limits.append(512)
    width = min(limits) - n_special
    if width < 2:
        raise AlignerError(
            f"the encoder {name!r} takes only {min(limits)} tokens, too few to embed text"
        )
    return width


def _mean_by_word(vectors: torch.Tensor, sentence: _Sentence) -> torch.Tensor:
    index = torch.tensor(sentence.word_of_subword, device=vectors.device)
    sums = torch.zeros(
        (sentence.n_words, vectors.shape[1]), dtype=vectors.dtype, device=vectors.device
    )
    sums.index_add_(0, index, vectors)
    counts = torch.bincount(index, minlength=sentence.n_words).to(vectors.dtype)
    return sums / counts[:, None]


def _similarity(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """``(cos + 1) / 2`` of every row of ``x`` with every row of ``y``, as float32 numpy."""
    xn = torch.nn.functional.normalize(x.float(), dim=1)
    yn = torch.nn.functional.normalize(y.float(), dim=1)
    sim = (xn @ yn.T + 1.0) / 2.0
    return sim.cpu().numpy()


def _word_links(
    cells: np.ndarray, sim: np.ndarray, src: _Sentence, tgt: _Sentence, subword: bool
) -> Links:
    rows, cols = np.nonzero(cells)
    best: dict[tuple[int, int], float] = {}
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        key = (src.word_of_subword[i], tgt.word_of_subword[j]) if subword else (i, j)
        score = float(sim[i, j])
        if score > best.get(key, -1.0):
            best[key] = score
    return Links(
        tuple(Link(i, j, min(1.0, max(0.0, s))) for (i, j), s in sorted(best.items()))
    )
