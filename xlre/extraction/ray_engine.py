"""Parts as work for Ray actors: ``xlre extract --engine ray [--ray-address ADDR]``.

* **One model-holding actor per GPU**, when the cluster has GPUs, else **one per N CPU
  cores** (``RayOptions.cpus_per_actor``, torch using that many threads), at most
  ``RayOptions.actors`` and never more than there are parts to do. Each actor loads the
  model once and extracts whole parts; inside an actor the Extractor batches the
  documents by length, as it does locally. The model directory (and the KB) must be
  readable at the same path on every node (a shared file system, or a copy).
* **The driver reads and writes; actors compute.** The driver (the machine running
  ``xlre extract``) reads a part's documents (counting skipped lines), hands them to an
  actor (at most two parts queued per actor, so reading overlaps extracting and memory
  stays bounded), and writes the triples the actor returns under a temporary name,
  renamed when complete, then records the part in the manifest. Only the driver needs
  the inputs and the output directory.
* **Nothing lost, nothing doubled.** An actor whose process dies is restarted (model
  loaded again) and its queued parts retried (``max_restarts`` / ``max_task_retries``,
  :data:`MAX_RESTARTS`); a part is written only from a finished task, once, replacing
  any earlier file of its name, so a retried part never doubles.

With no address a local Ray instance is started (with ``actors x cpus_per_actor`` CPUs
when ``actors`` is given, else all of this machine's) and shut down at the end.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment.errors import UserError
from xlre.extraction.documents import Document, ExtractError, InputReport, read_documents
from xlre.extraction.partdir import (
    Manifest,
    PartCounts,
    PartSettings,
    extract_to,
    input_stat,
    write_part,
)

logger = logging.getLogger(__name__)

#: An actor whose process dies is restarted, and its parts retried, this many times.
MAX_RESTARTS = 3
#: Parts queued on one actor at a time (one running, one waiting).
QUEUED_PER_ACTOR = 2


class RayEngineError(ExtractError):
    """Ray is missing, cannot be reached, or keeps losing a part; the message says the fix."""


@dataclass(frozen=True)
class PartJob:
    """One part to extract: its file name in the output directory and its input."""

    name: str
    input: str


@dataclass(frozen=True)
class RayOptions:
    """``address``: the cluster to join (``auto``, ``ray://HOST:10001``; ``None``: start a
    local instance). ``actors``: at most this many actors (``None``: one per GPU, else one
    per ``cpus_per_actor`` CPUs of the cluster)."""

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: int = 1

    def __post_init__(self) -> None:
        if self.cpus_per_actor < 1:
            raise ExtractError(f"--ray-cpus-per-actor must be at least 1, got {self.cpus_per_actor}")
        if self.actors is not None and self.actors < 1:
            raise ExtractError(f"--ray-actors must be at least 1, got {self.actors}")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayEngineError(
            "--engine ray needs Ray; install it with `pip install 'xlre[ray]'`") from None
    return ray


class _ExtractorActor:
    """Holds one Extractor (built by the factory on the actor) and extracts parts."""

    def __init__(self, make_extractor: Callable[[str | None], Any], device: str,
                 threads: int | None) -> None:
        import os

        import torch

        if threads:
            torch.set_num_threads(threads)
        self.pid = os.getpid()
        self.extractor = make_extractor(device)

    def ready(self) -> int:
        return self.pid

    def extract(self, docs: list[Document]) -> tuple[bytes, PartCounts]:
        sink = io.StringIO()
        counts = extract_to(self.extractor, docs, sink)
        return sink.getvalue().encode("utf-8"), counts


def _start(ray: Any, options: RayOptions) -> bool:
    """Initialise Ray unless it is; return whether this call started it."""
    if ray.is_initialized():
        return False
    num_cpus = None
    if options.address is None and options.actors is not None:
        num_cpus = options.actors * options.cpus_per_actor
    try:
        ray.init(address=options.address, num_cpus=num_cpus, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise RayEngineError(
            f"cannot start or reach Ray at {options.address or 'a new local instance'}: {err}. "
            "Fix: check --ray-address (`ray status` on the head node prints it), or leave it "
            "out to run on this machine") from None
    return True


def run_parts(jobs: list[PartJob], out_dir: Path, settings: PartSettings, manifest: Manifest,
              make_extractor: Callable[[str | None], Any], options: RayOptions,
              progress: Callable[[str, int], None] | None, written: list[str]) -> dict[str, Any]:
    """Extract ``jobs`` on Ray actors, writing each finished part and recording it in
    ``manifest`` (names appended to ``written``); return what the engine did (actors,
    device, start-up seconds)."""
    ray = _import_ray()
    if not jobs:
        return {}
    t0 = time.perf_counter()
    started = _start(ray, options)
    init_s = time.perf_counter() - t0
    actors: list[Any] = []
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus:
            n, device, threads = gpus, "cuda", None
            per = {"num_cpus": options.cpus_per_actor, "num_gpus": 1}
        else:
            n = max(1, int(resources.get("CPU", 1)) // options.cpus_per_actor)
            device, threads = "cpu", options.cpus_per_actor
            per = {"num_cpus": options.cpus_per_actor}
        n = min(n, options.actors or n, len(jobs))
        remote_cls = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
                                **per)(_ExtractorActor)
        t1 = time.perf_counter()
        actors = [remote_cls.remote(make_extractor, device, threads) for _ in range(n)]
        try:
            ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayActorError as err:
            first = str(err).strip().splitlines()[-1][:300]
            raise RayEngineError(
                f"the Ray actors could not load the model {settings.model} ({first}). Fix: "
                "make the model directory (and --kb) readable at this path on every node, "
                "and check the workers' logs (`ray logs`)") from None
        ready_s = time.perf_counter() - t1
        logger.info("ray: %d actors on %s (%s each) ready in %.1f s (Ray start %.1f s)",
                    n, device, per, ready_s, init_s)
        _schedule(ray, jobs, actors, out_dir, settings, manifest, progress, written)
        return {"actors": n, "device": device, "resources_per_actor": per,
                "ray_start_seconds": round(init_s, 2), "actors_ready_seconds": round(ready_s, 2)}
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()


def _reraise_user_error(err: Any) -> None:
    """A task that failed on bad input (an ExtractError on the actor) is that error here."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, UserError):
        raise cause from None


def _schedule(ray: Any, jobs: list[PartJob], actors: list[Any], out_dir: Path,
              settings: PartSettings, manifest: Manifest,
              progress: Callable[[str, int], None] | None, written: list[str]) -> None:
    queued = [0] * len(actors)
    pending: dict[Any, tuple[PartJob, int, dict[str, int], InputReport]] = {}
    todo = iter(jobs)
    exhausted = False
    while True:
        while not exhausted and min(queued) < QUEUED_PER_ACTOR:
            job = next(todo, None)
            if job is None:
                exhausted = True
                break
            k = queued.index(min(queued))
            stat = input_stat(job.input)
            report = InputReport()
            docs = list(read_documents([job.input], settings.input_format, settings.lang,
                                       settings.skip_bad, report))
            pending[actors[k].extract.remote(docs)] = (job, k, stat, report)
            queued[k] += 1
        if not pending:
            return
        done, _ = ray.wait(list(pending), num_returns=1)
        job, k, stat, report = pending.pop(done[0])
        queued[k] -= 1
        try:
            data, counts = ray.get(done[0])
        except ray.exceptions.RayTaskError as err:
            _reraise_user_error(err)
            raise
        except ray.exceptions.RayActorError as err:
            raise RayEngineError(
                f"part {job.name} ({job.input}): its Ray actor died {MAX_RESTARTS + 1} times "
                f"({type(err).__name__}). Fix: look at the workers' logs (`ray logs`), give "
                "each actor more memory (--ray-cpus-per-actor) or smaller input files, then "
                "rerun with --resume (finished parts are kept)") from None
        write_part(out_dir, job.name, data)
        manifest.finish_part(job.name, job.input, stat, counts, report.skipped, "ray")
        written.append(job.name)
        if progress:
            progress("documents", counts.documents)
            progress("parts", 1)
