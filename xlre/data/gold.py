"""Gold marked-sentence files as a training and evaluation source.

A marked file (KBP37, RELX, SemEval 2010 task 8; read by :mod:`xlre.data.marked`) holds one
entity pair per sentence and a *directed* label: ``per:employee_of(e1,e2)``,
``org:members(e2,e1)``, or a negative (``no_relation``, ``Other``). It becomes run-style
records (the columns of :func:`xlre.annotate.load_run`) so the same featurizer, trainer
and evaluator handle it, alone or mixed with an annotation run:

* words come from the language's tokenizer, run on the text before, inside and after each
  entity separately, so the marked spans are always whole words;
* the two entities are the record's only entities, and they are *partial*: other
  mentions in the sentence are not marked, so the record carries no entity labels (the
  entity head does not learn "O" for them);
* both ordered pairs are relation instances: ``r(e1,e2)`` labels (e1, e2) with ``r`` and
  (e2, e1) with NA; a negative labels both NA. A label with no direction is read as
  ``(e1,e2)``;
* the split is the one the user gives for the file (never hashed), and each instance is
  its own bag (``gold:SOURCE:ID:e1|gold:SOURCE:ID:e2``), so bag attention and the
  KB-pair split of distant data leave gold records alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment.errors import CorpusError, UserError
from alignment.languages import LanguageError, normalize_lang
from alignment.tokenize import Tokenizer
from xlre.data.marked import MarkedReport, MarkedSentence, read_marked, reason_slug
from xlre.data.splits import GOLD_BAG_PREFIX, SPLITS
from xlre.records import NA

logger = logging.getLogger(__name__)

#: Labels that mean "no relation" in the marked formats we know.
NEGATIVE_LABELS = frozenset({"no_relation", "Other", "other", "NA", "none"})
_DIRECTED = re.compile(r"^(?P<rel>.+?)\((?P<a>e[12]),(?P<b>e[12])\)$")


class GoldError(UserError, ValueError):
    """A marked source is unusable; the message names it and the fix."""


@dataclass(frozen=True)
class MarkedSource:
    """A marked file, the language of its sentences, and the split it goes to."""

    path: Path
    lang: str
    split: str = "train"

    @property
    def name(self) -> str:
        """The path as given: it names the source's pair ids and bags, so two files of
        one basename in different directories never share an id."""
        return str(self.path)

    def describe(self) -> str:
        return f"{self.split}:{self.lang}:{self.path}"

    @classmethod
    def parse(cls, spec: str, default_split: str = "train") -> MarkedSource:
        """``SPLIT:LANG:PATH`` or ``LANG:PATH`` (the split is then ``default_split``)."""
        parts = spec.split(":", 2)
        if len(parts) == 3 and parts[0] in SPLITS:
            split, lang, path = parts
        elif len(parts) >= 2 and parts[0] not in SPLITS:
            split, lang, path = default_split, parts[0], spec.split(":", 1)[1]
        else:
            raise GoldError(
                f"marked source {spec!r}: expected SPLIT:LANG:PATH (SPLIT one of "
                f"{', '.join(SPLITS)}) or LANG:PATH, e.g. train:en:kbp37/train.txt"
            )
        try:  # zh-Hans, zh_TW, cmn -> zh; EN, en-US -> en (alignment.languages)
            lang = normalize_lang(lang)
        except LanguageError as err:
            raise GoldError(f"marked source {spec!r}: {err}") from None
        p = Path(path)
        if not p.is_file():
            raise GoldError(f"marked source {spec!r}: {p} is not a file")
        return cls(p, lang, split)


def parse_label(label: str) -> tuple[str, str]:
    """``(relation, direction)``: direction ``e1e2`` / ``e2e1``; relation NA for negatives."""
    label = label.strip()
    if label in NEGATIVE_LABELS:
        return NA, ""
    m = _DIRECTED.match(label.replace(" ", ""))
    if m is None:
        return label, "e1e2"
    if m["a"] == m["b"]:
        raise ValueError(f"label {label!r} relates an entity to itself")
    return m["rel"], m["a"] + m["b"]


def directed_label(relation: str, direction: str) -> str:
    """The label :func:`parse_label` reads back: ``directed_label("r", "e2e1")`` is ``r(e2,e1)``."""
    return f"{relation}({direction[:2]},{direction[2:]})"


def _bag(source: str, sent_id: str, head: str, tail: str) -> str:
    key = re.sub(r"[|\s]", "_", f"{source}:{sent_id}")
    return f"{GOLD_BAG_PREFIX}{key}:{head}|{GOLD_BAG_PREFIX}{key}:{tail}"


def bag_direction(bag: str) -> str | None:
    """``e1e2`` / ``e2e1`` for a gold instance's bag, ``None`` for a distant one."""
    if not bag.startswith(GOLD_BAG_PREFIX):
        return None
    head, _, tail = bag.partition("|")
    return head[-2:] + tail[-2:]


def marked_to_record(ms: MarkedSentence, source: MarkedSource, tokenize: Any) -> dict[str, Any]:
    """One marked sentence as a run-style record (see the module docstring)."""
    rel, direction = parse_label(ms.label)
    (a0, a1), (b0, b1) = ms.e1, ms.e2
    if a0 < b1 and b0 < a1:
        raise ValueError("e1 and e2 overlap")
    order = sorted([("e1", a0, a1), ("e2", b0, b1)], key=lambda x: x[1])
    tokens: list[str] = []
    spans: dict[str, tuple[int, int]] = {}

    def add(lo: int, hi: int) -> None:
        tokens.extend(tokenize(ms.text[lo:hi]).tokens)

    pos = 0
    for name, lo, hi in order:
        add(pos, lo)
        first = len(tokens)
        add(lo, hi)
        if len(tokens) == first:
            raise ValueError(f"empty {name}")
        spans[name] = (first, len(tokens))
        pos = hi
    add(pos, len(ms.text))
    entities = []
    for name in ("e1", "e2"):
        s, e = spans[name]
        char_s, char_e = getattr(ms, name)
        entities.append({
            "char_start": char_s, "char_end": char_e, "tok_start": s, "tok_end": e,
            "text": ms.text[char_s:char_e], "kb_id": None, "label": None, "source": "gold",
        })
    relations = []
    for head, tail, h_i, t_i in (("e1", "e2", 0, 1), ("e2", "e1", 1, 0)):
        label = rel if direction == head + tail else NA
        relations.append({"head": h_i, "tail": t_i, "relation": label, "source": "gold",
                          "bag": _bag(source.name, ms.sent_id, head, tail)})
    return {
        "pair_id": f"{GOLD_BAG_PREFIX}{source.name}:{ms.sent_id}",
        "side": "src",
        "lang": source.lang,
        "tokens": tokens,
        "entities": entities,
        "relations": relations,
        "fixed_split": source.split,
        "partial_entities": True,
        "marked_label": ms.label,
    }


def read_sources(
    sources: Iterable[MarkedSource], skip_bad: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Records of every source and a report ``{describe(): {"read", "skipped"}}``."""
    records: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    for src in sources:
        rep = MarkedReport()
        tok = Tokenizer(src.lang)
        for ms in read_marked(src.path, skip_bad=skip_bad, report=rep):
            try:
                records.append(marked_to_record(ms, src, tok))
            except ValueError as err:
                reason = reason_slug(str(err))
                if not skip_bad:
                    raise CorpusError(src.path, ms.line_no, f"bad marked sentence: {err}",
                                      "repair the record, or pass --skip-bad to leave it out "
                                      "(counted)", reason=reason) from None
                rep.read -= 1
                rep.skipped[reason] += 1
        if rep.read == 0:
            raise GoldError(f"{src.path}: no usable marked sentence (skipped: "
                            f"{dict(rep.skipped)})")
        if rep.skipped:
            logger.warning("%s: skipped %d bad records: %s", src.path, sum(rep.skipped.values()),
                           dict(rep.skipped))
        report[src.describe()] = rep.as_dict()
    return records, report


def gold_dataset(records: Sequence[dict[str, Any]], features: Any = None) -> Any:
    """The records as a ``datasets.Dataset``, cast to ``features`` (a run's) when given."""
    import datasets

    entity = {
        "char_start": datasets.Value("int64"), "char_end": datasets.Value("int64"),
        "tok_start": datasets.Value("int64"), "tok_end": datasets.Value("int64"),
        "text": datasets.Value("string"), "kb_id": datasets.Value("string"),
        "label": datasets.Value("string"), "source": datasets.Value("string"),
    }
    relation = {
        "head": datasets.Value("int64"), "tail": datasets.Value("int64"),
        "relation": datasets.Value("string"), "source": datasets.Value("string"),
        "bag": datasets.Value("string"),
    }
    own = datasets.Features({
        "pair_id": datasets.Value("string"), "side": datasets.Value("string"),
        "lang": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")),
        "entities": [entity], "relations": [relation],
        "fixed_split": datasets.Value("string"), "partial_entities": datasets.Value("bool"),
        "marked_label": datasets.Value("string"),
    })
    ds = datasets.Dataset.from_list(list(records), features=own)
    if features is not None:
        ds = ds.cast(features)
    return ds
