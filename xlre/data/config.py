"""How a run becomes encoder sequences: :class:`DataConfig`, written into the training
config.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignment.errors import UserError
from alignment.languages import LanguageError, normalize_lang

RELATION_REPRS = ("pooling", "markers", "punct")
#: ``data.split_rule`` (xlre.data.splits): which entity pairs are held to one split.
SPLIT_RULES = ("facts", "pairs")


class DataError(UserError, ValueError):
    """The run cannot be turned into training data; the message says why and the fix."""


@dataclass(frozen=True)
class DataConfig:
    """How a run becomes sequences. Written into the training config."""

    max_seq_length: int = 256
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 13
    relation_repr: str = "pooling"
    #: In bag training, at most this many sentence pairs of a bag go into one step
    #: (a fresh deterministic sample each epoch).
    max_bag_pairs: int = 4
    #: Train on these languages of the sources only, comma-separated (``en`` for a
    #: source-only baseline); empty: every language.
    languages: str = ""
    #: ``facts``: no KB fact in two splits (pairs with no fact may be in several);
    #: ``pairs``: no entity pair at all in two splits (loses far more; see xlre.data.splits).
    split_rule: str = "facts"
    #: ``false``: the target side keeps its projected entities but not its projected
    #: relations (the entities-only ablation: relations are learnt from the source alone,
    #: while the entity head still learns both languages).
    project_relations: bool = True

    def __post_init__(self) -> None:
        if self.relation_repr not in RELATION_REPRS:
            raise DataError(
                f"relation_repr {self.relation_repr!r} is not one of {', '.join(RELATION_REPRS)}"
            )
        if self.split_rule not in SPLIT_RULES:
            raise DataError(
                f"split_rule {self.split_rule!r} is not one of {', '.join(SPLIT_RULES)}")
        if not 0 <= self.dev_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise DataError("dev_fraction and test_fraction must each lie in [0, 1)")
        if self.dev_fraction + self.test_fraction >= 1:
            raise DataError(
                f"dev_fraction + test_fraction = {self.dev_fraction + self.test_fraction} "
                "leaves nothing to train on; keep their sum below 1"
            )
        if self.max_seq_length < 16:
            raise DataError(f"max_seq_length {self.max_seq_length} is too small; use 16 or more")
        try:
            self.language_set()
        except LanguageError as err:
            raise DataError(f"data.languages: {err}") from None
        if self.max_bag_pairs < 1:
            raise DataError(f"max_bag_pairs must be at least 1, got {self.max_bag_pairs}")

    @classmethod
    def stored(cls, fields: dict) -> DataConfig:
        """The data settings a model stored (``config.data_config``). Models saved
        before ``split_rule`` existed split by every pair, and are evaluated that way."""
        return cls(**({"split_rule": "pairs"} | fields))

    def language_set(self) -> frozenset[str]:
        """The languages of ``languages``, normalised (``zh-Hans`` is ``zh``); empty: all."""
        return frozenset(normalize_lang(c.strip()) for c in self.languages.split(",") if c.strip())
