"""Training data from an annotation run and/or gold marked files.

Consumes a run directory (:mod:`xlre.annotate`), gold marked files (:mod:`xlre.data.gold`)
and a tokenizer; produces a ``datasets.DatasetDict`` of sequences (``train`` / ``dev`` /
``test``, :mod:`xlre.data.featurize`), split by KB entity pair
(:mod:`xlre.data.splits`), with what was counted and dropped on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from xlre.annotate import load_run
from xlre.data.config import DataConfig, DataError
from xlre.data.featurize import COUNT_COLUMNS, OPTIONAL_COLUMNS, Featurizer
from xlre.data.gold import gold_dataset, read_sources
from xlre.data.labels import LabelMaps
from xlre.data.splits import SPLITS, scan_run

logger = logging.getLogger(__name__)


@dataclass
class RelationData:
    """Sequences per split, the label maps they use, and what was counted on the way."""

    splits: Any  # datasets.DatasetDict
    labels: LabelMaps
    config: DataConfig
    report: dict[str, Any]


RUN_COLUMNS = ("pair_id", "side", "lang", "tokens", "entities", "relations")


#: One annotation run directory, several (trained on together), or none.
Runs = Path | str | Sequence[Path | str] | None


def run_dirs(runs: Runs) -> list[Path]:
    """``runs`` as a list of directories (empty for ``None``)."""
    if runs is None:
        return []
    if isinstance(runs, str | Path):
        return [Path(runs)]
    return [Path(r) for r in runs]


def describe_sources(run_dir: Runs, marked: Sequence[Any] = ()) -> str:
    """The run directories, or the marked files, for messages."""
    runs = run_dirs(run_dir)
    return ", ".join(str(r) for r in runs) if runs else ", ".join(str(m.path) for m in marked)


def load_runs(runs: Sequence[Path], guard: Any = contextlib.nullcontext) -> Any:
    """The records of one run, or of several as one dataset.

    Several runs (e.g. news-en-zh and news-en-fr, one KB) are trained on together: their
    pair ids are prefixed with the run directory's name (``news-en-zh/17``), so pairs of
    different runs never merge, while bags (KB entity pairs) and splits (KB facts) are
    shared. Two runs with the same directory name are refused."""
    loaded = []
    for run_dir in runs:
        with guard():
            run = load_run(run_dir)
        if len(run) == 0:
            raise DataError(f"{run_dir}: the run has no records")
        loaded.append(run)
    if len(loaded) == 1:
        return loaded[0]
    names = [r.resolve().name for r in runs]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise DataError(f"two runs are named {name!r} ({runs[names.index(name)]}, {runs[i]}); "
                            "pair ids are prefixed with the run's directory name, so rename one")
    parts = []
    for name, run in zip(names, loaded, strict=True):
        run = run.select_columns(list(RUN_COLUMNS))
        with guard():
            run = run.map(lambda ids, prefix=f"{name}/": {"pair_id": [prefix + i for i in ids]},
                          input_columns="pair_id", batched=True, desc=f"naming {name}'s pairs")
        parts.append(run.cast(parts[0].features) if parts else run)
    return datasets.concatenate_datasets(parts)


def load_sources(
    run_dir: Runs,
    marked: Sequence[Any] = (),
    skip_bad: bool = False,
    main_process_first: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """The records of one or several annotation runs (:func:`load_runs`) and/or gold
    marked files, as one dataset.

    ``marked`` holds :class:`xlre.data.gold.MarkedSource` items. Returns ``(raw, report)``;
    ``report`` says per marked file how many records were read and skipped.
    """
    runs = run_dirs(run_dir)
    if not runs and not marked:
        raise DataError("no training data: give an annotation run, marked files, or both")
    guard = main_process_first or contextlib.nullcontext
    run = load_runs(runs, guard) if runs else None
    if not marked:
        return run, {}
    records, report = read_sources(marked, skip_bad=skip_bad)
    if run is None:
        return gold_dataset(records), {"marked": report}
    run = run.select_columns(list(RUN_COLUMNS))
    for name, default in OPTIONAL_COLUMNS.items():
        run = run.add_column(name, [default] * len(run))
    gold = gold_dataset(records, run.features)
    return datasets.concatenate_datasets([run, gold]), {"marked": report}


def build_relation_data(
    run_dir: Runs,
    tokenizer: Any,
    config: DataConfig,
    labels: LabelMaps | None = None,
    main_process_first: Any = None,
    num_proc: int | None = None,
    marked: Sequence[Any] = (),
    skip_bad: bool = False,
    loaded: tuple[Any, dict[str, Any]] | None = None,
) -> RelationData:
    """Sequences for every split of the run in ``run_dir`` (or of the runs, a list; see
    :func:`load_runs` and the module docstring),
    plus the gold marked files ``marked`` (:class:`xlre.data.gold.MarkedSource`, each in the
    split it names); ``run_dir`` may be ``None`` when marked files are given.

    ``labels`` are the run's own when ``None`` (training a new model), or a trained
    model's (evaluating): relations the model does not know are then counted and treated
    as no relation, entity types it does not know are left untagged.
    ``main_process_first`` is ``accelerator.main_process_first`` under Accelerate, so
    the main process fills the ``datasets`` cache and the others read it.
    ``loaded`` is what :func:`load_sources` returned for these sources, when the caller
    has it already (marked files are then not read and tokenized again).
    """
    guard = main_process_first or contextlib.nullcontext
    raw, source_report = loaded or load_sources(run_dir, marked, skip_bad, main_process_first)
    where = describe_sources(run_dir, marked)
    dropped_by_language = 0
    if config.languages:  # e.g. the source side alone, for a source-only baseline
        keep = config.language_set()
        with guard():
            kept = raw.filter(lambda lang: lang in keep, input_columns="lang",
                              desc=f"keeping {','.join(sorted(keep))}")
        dropped_by_language = len(raw) - len(kept)
        if len(kept) == 0:
            raise DataError(f"{where}: no record is in data.languages={config.languages!r}; "
                            "name a language the sources hold")
        raw = kept
    run_labels, pair_split, counts = scan_run(raw, config)
    if labels is None:
        labels = run_labels
        if not labels.relations:
            raise DataError(
                f"{where}: no sentence got a relation (every pair is NA); a relation "
                "model cannot learn from that. Check that the KB facts connect entities "
                "the corpus mentions together"
            )
    featurizer = Featurizer(tokenizer, labels, config, pair_split)
    with guard():
        seqs = raw.map(
            featurizer, batched=True, with_indices=True, remove_columns=raw.column_names,
            num_proc=num_proc, desc="featurizing",
            new_fingerprint=_fingerprint(raw, tokenizer, labels, config),
        )
    report = dict(counts)
    report.update(source_report)
    report["records_dropped_language"] = dropped_by_language
    totals = {name: 0 for name in COUNT_COLUMNS.values()}
    for batch in seqs.select_columns(list(COUNT_COLUMNS)).iter(batch_size=4096):
        for col, name in COUNT_COLUMNS.items():
            totals[name] += sum(batch[col])
    report.update(totals)
    seqs = seqs.remove_columns(list(COUNT_COLUMNS))
    if totals["sentences_unfittable"]:
        logger.warning(
            "%d sentences hold a single word longer than max_seq_length=%d subwords and were "
            "left out (never truncated)", totals["sentences_unfittable"], config.max_seq_length,
        )
        seqs = seqs.filter(lambda ids: len(ids) > 0, input_columns="input_ids")
    if totals["instances_dropped_too_far"]:
        logger.warning(
            "%d entity pairs were too far apart for one window of %d subwords; left out",
            totals["instances_dropped_too_far"], config.max_seq_length,
        )
    if totals["relations_unknown_to_model"]:
        logger.warning(
            "%d relation labels of the run are unknown to the model and count as no relation",
            totals["relations_unknown_to_model"],
        )
    splits = {}
    split_col = seqs["split"]
    for name in SPLITS:
        idx = [i for i, s in enumerate(split_col) if s == name]
        splits[name] = seqs.select(idx)
        report[f"sequences_{name}"] = len(idx)
        report[f"instances_{name}"] = sum(len(b) for b in splits[name]["inst_bag"])
    logger.info("training data: %s", report)
    return RelationData(datasets.DatasetDict(splits), labels, config, report)


def _fingerprint(raw: Any, tokenizer: Any, labels: LabelMaps, config: DataConfig) -> str:
    h = hashlib.sha1()
    h.update(raw._fingerprint.encode())
    # The data package's own source: a changed featurizer must never reuse a stale cache.
    for source in sorted(Path(__file__).parent.glob("*.py")):
        h.update(source.read_bytes())
    h.update(repr((labels, config)).encode())
    h.update(str(len(tokenizer)).encode())
    h.update(repr(tokenizer.tokenize("xlre fingerprint probe: Zürich, 東京")).encode())
    return h.hexdigest()
