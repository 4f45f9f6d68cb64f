"""The configuration of an annotation run, written to the run's ``config.json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alignment.aligners import ALIGNERS, WordAligner, build_aligner
from alignment.aligners.eflomal import eflomal_parts
from alignment.errors import UserError
from alignment.languages import normalize_lang
from alignment.script import SCRIPT_POLICIES
from xlre.kb.linker import LINKING_RULES

ENGINES = ("local", "ray")


class RunError(UserError, RuntimeError):
    """An annotation run cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class AnnotateConfig:
    """Everything an annotation run depends on; written to ``config.json``."""

    corpus: str
    src_lang: str
    tgt_lang: str
    kb: str
    out: str
    tgt_file: str | None = None
    corpus_format: str = "auto"
    aligner: str = "eflomal"
    symmetrize: str = "grow-diag-final-and"
    stem_prefix: int = 4
    extra_corpora: tuple[str, ...] = ()
    priors: str | None = None
    model: str = "xlm-roberta-base"
    #: Encoder layer of the neural aligner; ``None``: the encoder family's default
    #: (:func:`alignment.aligners.neural.family_defaults`), resolved when the run starts.
    layer: int | None = None
    confident: float = 0.8
    ner: tuple[str, ...] = ()
    na_ratio: float = 1.0
    seed: int = 13
    shard_size: int = 10000
    workers: int = 1
    num_shards: int = 1
    shard_index: int = 0
    skip_bad: bool = False
    case: str = "smart"
    min_alias_chars: int = 2
    #: Chinese script policy (:mod:`alignment.script`): ``fold`` treats traditional and
    #: simplified characters as one in alias linking, projection anchors and eflomal's
    #: training text (offsets stay in the original text); ``keep`` compares them as
    #: written. Runs made before this field read as ``fold`` when resumed.
    zh_script: str = "fold"
    #: Entity linking rule (:mod:`xlre.kb.linker`): ``rank`` (guards, then candidates
    #: ranked by sentence context and prior, kept when the best wins by ``link_margin``)
    #: or ``strict`` (every ambiguity not settled by a KB fact is dropped). Runs made
    #: before this field read as ``strict`` when resumed.
    linking: str = "rank"
    link_margin: float = 2.0
    #: ``local`` (this machine's processes) or ``ray`` (:mod:`xlre.annotate.ray_engine`).
    engine: str = "local"
    #: Ray cluster to join (``auto``, ``ray://host:10001``); ``None``: a local instance.
    ray_address: str | None = None
    #: The KB's on-disk index (:mod:`xlre.kb.index`), built there when missing or stale;
    #: workers open it by path and share it. ``None``: the KB is loaded into memory. The
    #: links are the same either way, so a run may resume with or without it.
    kb_index: str | None = None

    def validate(self) -> None:
        for side in ("src_lang", "tgt_lang"):  # zh-Hans, zh_TW, cmn -> zh (alignment.languages)
            object.__setattr__(self, side, normalize_lang(getattr(self, side)))
        if not 0.0 <= self.na_ratio <= 1.0:
            raise RunError(f"na_ratio must be in [0, 1], got {self.na_ratio}")
        if self.shard_size < 1 or self.workers < 1:
            raise RunError("shard_size and workers must be at least 1")
        if not 0 <= self.shard_index < self.num_shards:
            raise RunError(
                f"--shard-index {self.shard_index} is outside 0..{self.num_shards - 1} "
                f"for --num-shards {self.num_shards}"
            )
        if self.aligner not in ALIGNERS:
            raise RunError(f"unknown aligner {self.aligner!r}; choose {', '.join(ALIGNERS)}")
        if self.zh_script not in SCRIPT_POLICIES:
            raise RunError(f"unknown --zh-script {self.zh_script!r}; choose {' or '.join(SCRIPT_POLICIES)}")
        if self.linking not in LINKING_RULES:
            raise RunError(f"unknown --linking {self.linking!r}; choose {' or '.join(LINKING_RULES)}")
        if self.link_margin < 1.0:
            raise RunError(f"--link-margin must be at least 1, got {self.link_margin}")
        if self.engine not in ENGINES:
            raise RunError(f"unknown engine {self.engine!r}; choose {' or '.join(ENGINES)}")
        if self.ray_address and self.engine != "ray":
            raise RunError("--ray-address needs --engine ray")
        if not 0 <= self.confident <= 1:
            raise RunError(f"confident must lie in [0, 1], got {self.confident}")
        if self.num_shards > 1 and self.aligner != "simalign" and self.priors is None:
            raise RunError(
                "a run split across machines (--num-shards > 1) needs eflomal priors shared by "
                "every machine, or the shards would be aligned with different statistics. Fix: "
                "train them once with `xlre align ... --save-priors PRIORS` and pass --priors PRIORS"
            )

    #: What a field added after a run was made means for that run, where not its default.
    BEFORE_FIELD: ClassVar[dict[str, str]] = {"linking": "strict"}
    # Fields that may differ between a run and its resumption without changing output.
    RESUMABLE_FIELDS = ("workers", "skip_bad", "engine", "ray_address", "kb_index")


def make_aligner(config: AnnotateConfig) -> WordAligner:
    """The run's word aligner (the one factory ``xlre align`` and ``eval-projection`` use),
    whose eflomal part trains on script-folded text unless ``zh_script`` is ``keep``."""
    aligner = build_aligner(config.aligner, symmetrize=config.symmetrize, priors=config.priors,
                            stem_prefix=config.stem_prefix, model=config.model,
                            layer=config.layer, confident=config.confident)
    for part in eflomal_parts(aligner):
        part.fold_scripts = config.zh_script == "fold"
    return aligner
