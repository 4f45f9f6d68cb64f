"""Small XLM-R-shaped encoders built locally, so the whole pipeline runs with no download.

:func:`train_tokenizer` builds a SentencePiece-style Unigram tokenizer with the
``tokenizers`` library and wraps it as an ``XLMRobertaTokenizerFast`` (``<s>``/``</s>``
around the sequence, ``<unk>`` at id 3, as XLM-R has them). :func:`build_encoder` adds a
randomly initialised ``XLMRobertaModel`` of the requested shape and saves both with
``save_pretrained``, so ``AutoTokenizer.from_pretrained(out_dir)`` and
``AutoModel.from_pretrained(out_dir)`` load them offline, exactly like a downloaded
checkpoint. ``xlre init-model --tiny`` calls it on the text of an annotation run.

The tokenizer is built the way transformers 5 rebuilds an XLM-R tokenizer when it loads
one (Unigram model, whitespace split then ``▁`` metaspace, no normalizer), so the saved
tokenizer and the reloaded one tokenize identically; the builder checks that.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from alignment.errors import SettingError

logger = logging.getLogger(__name__)

# Special tokens in XLM-R's id order for the first four (<s>=0, <pad>=1, </s>=2,
# <unk>=3); transformers 5 hard-codes unk_id=3 for XLM-R tokenizers.
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


@dataclass(frozen=True)
class EncoderShape:
    """The size of a randomly initialised XLM-R encoder."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    max_positions: int = 258
    vocab_size: int = 4000

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise SettingError(
                f"hidden size {self.hidden} is not divisible by {self.heads} heads; "
                "pick a head count that divides it"
            )
        if self.max_positions < 4:
            raise SettingError(f"max_positions must be at least 4, got {self.max_positions}")
        if min(self.hidden, self.layers, self.heads, self.intermediate, self.vocab_size) < 1:
            raise SettingError(f"every size must be positive, got {self}")


#: The shape ``xlre init-model --tiny`` uses by default: small enough to train on 2 CPU
#: cores in minutes.
TINY = EncoderShape()
#: The test suite's shape: trains in seconds.
MICRO = EncoderShape(hidden=32, layers=4, heads=2, intermediate=64, max_positions=130,
                     vocab_size=500)
#: XLM-R base's shape (768 hidden, 12 layers, 12 heads), for speed benchmarks only.
BASE = EncoderShape(hidden=768, layers=12, heads=12, intermediate=3072, max_positions=514,
                    vocab_size=8000)


def _unigram_vocab(words: Counter, vocab_size: int) -> list[tuple[str, float]]:
    """A scored Unigram vocabulary built by counting, so the same texts always give the
    same tokenizer (the ``tokenizers`` trainer does not: its pruning breaks ties in hash
    order, which differs between processes). Every character seen is kept, so no seen
    text maps to ``<unk>``; then whole words by frequency; the rest of the room goes to
    the most frequent substrings of two to eight characters. Ties are broken by text.
    A piece's score is the log of its share of all counts."""
    chars: Counter = Counter()
    pieces: Counter = Counter()
    for word, n in words.items():
        for ch in word:
            chars[ch] += n
        for i in range(len(word)):
            for j in range(i + 2, min(len(word), i + 8) + 1):
                pieces[word[i:j]] += n
    room = max(vocab_size - len(SPECIAL_TOKENS) - len(chars), 0)
    by_count = lambda kv: (-kv[1], kv[0])  # noqa: E731
    whole = [kv for kv in sorted(words.items(), key=by_count) if len(kv[0]) > 1][:room]
    taken = {w for w, _ in whole}
    rest = [kv for kv in sorted(pieces.items(), key=by_count) if kv[0] not in taken]
    scored = sorted(chars.items()) + whole + rest[:room - len(whole)]
    total = sum(n for _, n in scored) or 1
    vocab = [(tok, 0.0) for tok in SPECIAL_TOKENS]
    vocab += [(tok, math.log(n / total)) for tok, n in scored]
    return vocab


def train_tokenizer(texts: Iterable[str], vocab_size: int, model_max_length: int):
    """Build a Unigram tokenizer on ``texts`` and wrap it as ``XLMRobertaTokenizerFast``.
    The vocabulary is counted, not trained (see :func:`_unigram_vocab`), so the result
    depends only on ``texts`` and ``vocab_size``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    pre = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace("▁", prepend_scheme="always")]
    )
    words: Counter = Counter()
    for text in texts:
        words.update(piece for piece, _ in pre.pre_tokenize_str(text))
    vocab = _unigram_vocab(words, vocab_size)
    backend = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("<unk>"),
                                       byte_fallback=False))
    backend.pre_tokenizer = pre
    backend.decoder = decoders.Metaspace("▁", prepend_scheme="always")
    for i, tok in enumerate(SPECIAL_TOKENS):
        if backend.token_to_id(tok) != i:
            raise RuntimeError(f"special token {tok} got id {backend.token_to_id(tok)}, expected {i}")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return XLMRobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=model_max_length,
    )


def build_encoder(
    out_dir: Path | str, texts: Iterable[str], shape: EncoderShape = TINY, seed: int = 0
) -> Path:
    """Train a tokenizer on ``texts``, build a random XLM-R of ``shape``, save both.

    The model takes ``shape.max_positions - 2`` tokens, special tokens included (XLM-R
    positions start at ``pad_token_id + 1``), and the tokenizer's ``model_max_length``
    says so. ``xlre_encoder.json`` in ``out_dir`` records the shape and the seed.
    Returns ``out_dir``.
    """
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise SettingError("no text to train the tokenizer on: give at least one non-empty sentence")
    tokenizer = train_tokenizer(texts, shape.vocab_size, model_max_length=shape.max_positions - 2)
    tokenizer.save_pretrained(out_dir)

    reloaded = AutoTokenizer.from_pretrained(out_dir)
    for text in texts[:50]:
        if reloaded.tokenize(text) != tokenizer.tokenize(text):
            raise RuntimeError(
                f"the saved tokenizer in {out_dir} does not reload identically on {text!r}"
            )

    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=shape.max_positions,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = XLMRobertaModel(config)
    model.eval()
    model.save_pretrained(out_dir)
    (out_dir / "xlre_encoder.json").write_text(
        json.dumps({"shape": asdict(shape), "seed": seed, "sentences": len(texts),
                    "vocab": len(tokenizer)}, indent=2) + "\n",
        encoding="utf-8",
    )
    logger.info(
        "built a random XLM-R encoder (%d hidden, %d layers, vocabulary %d) in %s",
        shape.hidden, shape.layers, len(tokenizer), out_dir,
    )
    return out_dir


def with_max_positions(model_dir: Path | str, out_dir: Path | str, max_positions: int) -> Path:
    """Copy the encoder in ``model_dir`` with its position table cut to ``max_positions``.

    All other weights are shared, so on inputs short enough for both, the copy computes
    exactly what the original does; on longer inputs it must embed in windows.
    """
    from transformers import AutoTokenizer, XLMRobertaModel

    src = XLMRobertaModel.from_pretrained(model_dir)
    if max_positions > src.config.max_position_embeddings:
        raise SettingError(
            f"max_positions {max_positions} exceeds the original's "
            f"{src.config.max_position_embeddings}"
        )
    config = src.config.__class__.from_dict(
        {**src.config.to_dict(), "max_position_embeddings": max_positions}
    )
    short = XLMRobertaModel(config)
    state = src.state_dict()
    key = "embeddings.position_embeddings.weight"
    state[key] = state[key][:max_positions].clone()
    short.load_state_dict({k: v for k, v in state.items() if k in short.state_dict()})
    short.eval()
    out_dir = Path(out_dir)
    short.save_pretrained(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.model_max_length = max_positions - 2
    tokenizer.save_pretrained(out_dir)
    return out_dir
