"""Runs and gold files -> encoder sequences: labels, splits, windows, features, batches.

Consumes annotation runs (:mod:`xlre.annotate`) and gold marked-sentence files;
produces a ``datasets.DatasetDict`` per split and the batches training and evaluation
read. Windows and markers are shared with extraction, so both build the same
sequences.
"""

from xlre.data.batching import Collator, EpochSampler, TrainUnits, Unit, iter_bags
from xlre.data.config import RELATION_REPRS, DataConfig, DataError
from xlre.data.featurize import COUNT_COLUMNS, Featurizer
from xlre.data.gold import (
    GoldError,
    MarkedSource,
    bag_direction,
    directed_label,
    parse_label,
    read_sources,
)
from xlre.data.labels import IGNORE, LabelMaps, describe, entity_type
from xlre.data.marked import MarkedReport, MarkedSentence, read_marked, strip_markers
from xlre.data.markers import PUNCT_MARKERS, MarkerScheme
from xlre.data.relation_data import (
    RelationData,
    Runs,
    build_relation_data,
    describe_sources,
    load_runs,
    load_sources,
    run_dirs,
)
from xlre.data.splits import GOLD_BAG_PREFIX, SPLITS, scan_run, split_of_key, unordered_key
from xlre.data.windows import EncodedWindow, Window, encode_window, plan_windows, word_pieces

__all__ = [
    "COUNT_COLUMNS",
    "GOLD_BAG_PREFIX",
    "IGNORE",
    "PUNCT_MARKERS",
    "RELATION_REPRS",
    "SPLITS",
    "Collator",
    "DataConfig",
    "DataError",
    "EncodedWindow",
    "EpochSampler",
    "Featurizer",
    "GoldError",
    "LabelMaps",
    "MarkedReport",
    "MarkedSentence",
    "MarkedSource",
    "MarkerScheme",
    "RelationData",
    "Runs",
    "TrainUnits",
    "Unit",
    "Window",
    "bag_direction",
    "build_relation_data",
    "describe",
    "describe_sources",
    "directed_label",
    "encode_window",
    "entity_type",
    "iter_bags",
    "load_runs",
    "load_sources",
    "parse_label",
    "plan_windows",
    "read_marked",
    "read_sources",
    "run_dirs",
    "scan_run",
    "split_of_key",
    "strip_markers",
    "unordered_key",
    "word_pieces",
]
