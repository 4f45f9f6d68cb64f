"""Annotation shards as Ray tasks: ``xlre annotate --engine ray [--ray-address ADDR]``.

The driver (the machine that runs ``xlre annotate``) reads the corpus, cuts it into the
same shards as the local engine and submits each as a Ray task; it also writes every
shard file and the manifest, exactly as the local engine does, so the run directory,
``--resume`` and the records are the same whichever engine made them.

* **Built once, shared, not rebuilt per task.** The driver's annotator (the KB with its
  fact index, the gazetteer automata, the tokenizers) goes into Ray's object store once
  (``ray.put``); each Ray worker process fetches it on its first task and keeps it for
  the next ones (and makes its per-shard aligner once). eflomal priors (``--priors``)
  travel the same way, as bytes, so workers on other machines need no shared file
  system; whole-corpus eflomal links (a run without ``--priors``) are computed on the
  driver and each task carries its shard's lines.
* **Nothing lost, nothing doubled.** A task returns its records (as the shard file's
  bytes, encoded on the worker) to the driver, which writes the shard atomically (temporary file, then rename). A task whose worker dies is
  retried by Ray (``max_retries``); only a finished task's records are ever written,
  once, so a retried shard is never doubled. Shards already finished before an
  interruption are skipped on ``--resume``.
* At most ``2 x`` the cluster's CPUs shards are in flight, so the driver's memory stays
  bounded whatever the corpus size.

With no address a local Ray instance is started with ``workers`` CPUs (and shut down
at the end); ``--ray-address auto`` joins the cluster this machine belongs to.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from xlre.annotate.config import RunError

logger = logging.getLogger(__name__)

#: A task is retried this many times when its worker dies (then the run fails).
MAX_RETRIES = 3
_ANNOTATOR: dict[str, tuple[Any, tempfile.TemporaryDirectory | None]] = {}


class RayEngineError(RunError):
    """Ray is missing or the cluster cannot be reached; the message says the fix."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayEngineError(
            "--engine ray needs Ray; install it with `pip install 'xlre[ray]'`"
        ) from None
    return ray


def _worker_annotator(box: list[Any], priors_box: list[Any]) -> Any:
    """This worker's annotator: the driver's, fetched from the object store on the
    worker's first task and kept for the next ones."""
    import ray

    key = box[0].hex()
    held = _ANNOTATOR.get(key)
    if held is None:
        # The previous run's annotator and priors directory go first.
        for _, priors_dir in _ANNOTATOR.values():
            if priors_dir is not None:
                priors_dir.cleanup()
        _ANNOTATOR.clear()
        annotator = ray.get(box[0])
        priors_dir = None
        if priors_box:
            # eflomal reads the priors file on every shard, so it lives as long as the
            # annotator: removed when the next run replaces it, or when the worker exits.
            priors_dir = tempfile.TemporaryDirectory(prefix="xlre-priors-")
            path = Path(priors_dir.name) / "priors"
            path.write_bytes(ray.get(priors_box[0]))
            annotator.config = replace(annotator.config, priors=str(path))
        held = _ANNOTATOR[key] = (annotator, priors_dir)
    return held[0]


def _annotate_task(box: list[Any], priors_box: list[Any],
                   shard_no: int, items: list[Any], link_lines: list[str] | None,
                   span_lines: list[str] | None) -> tuple[int, bytes, dict[str, Any]]:
    annotator = _worker_annotator(box, priors_box)
    # Encoded here, in parallel, so the driver only writes bytes.
    data, stats = annotator.annotate_and_encode(items, link_lines, span_lines)
    return shard_no, data, stats.as_dict()


def run_shards(
    config: Any,
    annotator: Any,
    tasks: Iterator[tuple[int, list[Any], list[str] | None, list[str] | None, str]],
    write_shard: Callable[[Path, int, bytes, dict[str, Any]], None],
    progress: Callable[[str, int], None] | None = None,
) -> int:
    """Annotate ``tasks`` (the local engine's shard tuples) on Ray; return shards written."""
    ray = _import_ray()
    started = False
    t0 = time.perf_counter()
    if not ray.is_initialized():
        try:
            ray.init(address=config.ray_address, num_cpus=None if config.ray_address
                     else config.workers, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise RayEngineError(
                f"cannot start or reach Ray at {config.ray_address or 'a new local instance'}: "
                f"{err}. Fix: check --ray-address (`ray status` on the head node prints it), "
                "or leave it out to run on this machine"
            ) from None
        started = True
        logger.info("ray: local instance started in %.1f s", time.perf_counter() - t0)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        limit = max(2, 2 * cpus)
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_annotate_task)
        # The driver's annotator (KB, gazetteer automata, tokenizers), built once:
        # unpickling it on a worker takes about 1.4 s, building it 7.5 s (shared KB).
        box = [ray.put(annotator)]
        priors_box = [ray.put(Path(config.priors).read_bytes())] if config.priors else []
        logger.info("ray: %d CPUs, at most %d shards in flight", cpus, limit)
        pending: dict[Any, str] = {}
        written = 0

        def collect(wait_all: bool) -> None:
            nonlocal written
            while pending and (wait_all or len(pending) >= limit):
                done, _ = ray.wait(list(pending), num_returns=1)
                shard_dir = pending.pop(done[0])
                shard_no, records, stats = ray.get(done[0])
                write_shard(Path(shard_dir), shard_no, records, stats)
                written += 1
                if progress:
                    progress("annotate", stats.get("pairs", 0))

        for shard_no, items, link_lines, span_lines, shard_dir in tasks:
            ref = remote.remote(box, priors_box, shard_no, items, link_lines, span_lines)
            pending[ref] = shard_dir
            collect(wait_all=False)
        collect(wait_all=True)
        return written
    finally:
        if started:
            ray.shutdown()
