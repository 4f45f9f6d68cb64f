"""Annotation runs: link, label, align and project a parallel corpus with a KB.

Consumes a parallel corpus and a KB directory; produces a run directory of shards and
manifests (:mod:`xlre.annotate.rundir`) that training reads back with :func:`load_run`.

* :mod:`~xlre.annotate.config`: the run's settings (:class:`AnnotateConfig`);
* :mod:`~xlre.annotate.annotator`: the per-pair work (link, label, project);
* :mod:`~xlre.annotate.projection`: the projection runs and ``eval-projection`` share;
* :mod:`~xlre.annotate.run`: :func:`annotate`, the whole run, resumable;
* :mod:`~xlre.annotate.local_engine`, :mod:`~xlre.annotate.ray_engine`: who annotates
  the shards.
"""

from xlre.annotate.annotator import Annotator, ShardStats
from xlre.annotate.config import ENGINES, AnnotateConfig, RunError, make_aligner
from xlre.annotate.ner import load_ner, ner_entities
from xlre.annotate.projection import Projector, projected_entities
from xlre.annotate.ray_engine import RayEngineError
from xlre.annotate.run import annotate
from xlre.annotate.rundir import (
    LINKS_FILE,
    PRIORS_FILE,
    SHARD_DIR,
    SPANS_FILE,
    dump_record,
    encode_records,
    finished_shards,
    iter_records,
    load_run,
    merge_stats,
    read_manifest,
    shard_files,
    shard_name,
)

__all__ = [
    "ENGINES",
    "LINKS_FILE",
    "PRIORS_FILE",
    "SHARD_DIR",
    "SPANS_FILE",
    "AnnotateConfig",
    "Annotator",
    "Projector",
    "RayEngineError",
    "RunError",
    "ShardStats",
    "annotate",
    "dump_record",
    "encode_records",
    "finished_shards",
    "iter_records",
    "load_ner",
    "load_run",
    "make_aligner",
    "merge_stats",
    "ner_entities",
    "projected_entities",
    "read_manifest",
    "shard_files",
    "shard_name",
]
