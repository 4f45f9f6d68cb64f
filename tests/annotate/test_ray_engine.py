"""`xlre annotate --engine ray` on a local Ray instance: the same run as the local engine,
and a worker killed mid-shard is retried without doubling anything."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import xlre.annotate.run as run_module
from tests.annotate import ray_faults
from tests.annotate.test_annotate import config, records
from tests.helpers.handkb import write_kb
from xlre.annotate import LINKS_FILE, RunError, annotate
from xlre.cli import app

ray = pytest.importorskip("ray", reason="the Ray engine needs `pip install 'xlre[ray]'`")

FAULT_MARKER = "ray-killed.txt"


@pytest.fixture(scope="module")
def local_ray():
    """One local 2-CPU Ray instance for the module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # Workers cannot import the tests package: the dying annotator travels by value.
    ray.cloudpickle.register_pickle_by_value(ray_faults)
    yield
    ray.cloudpickle.unregister_pickle_by_value(ray_faults)
    ray.shutdown()


def kill_a_worker_in_shard_2(monkeypatch: pytest.MonkeyPatch, marker: Path) -> None:
    """From now on runs build a :class:`DyingAnnotator` that kills the worker of shard 2
    (corpus lines 51-75 at 25 pairs a shard) once, leaving ``marker``. Only for the Ray
    engine: a local run with one worker would kill the test process itself."""
    monkeypatch.setattr(run_module, "Annotator", lambda config, kb: ray_faults.DyingAnnotator(
        config, kb, kill_at_line=51, marker=marker))


@pytest.fixture()
def kb_dir(tmp_path: Path) -> Path:
    return write_kb(tmp_path / "kb")


def _no_timings(counts: dict) -> dict:
    return {k: _no_timings(v) if isinstance(v, dict) else v for k, v in counts.items()
            if "seconds" not in k}


def _by_key(run: Path) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for rec in records(run):
        key = (rec["pair_id"], rec["lang"])
        assert key not in out, f"{key} written twice"
        out[key] = json.dumps(rec, sort_keys=True)
    return out


def test_ray_equals_local_and_a_killed_worker_doubles_nothing(tmp_path, kb_dir, local_ray,
                                                               monkeypatch):
    local = annotate(config(tmp_path, kb_dir, "local"))
    marker = tmp_path / FAULT_MARKER
    kill_a_worker_in_shard_2(monkeypatch, marker)
    # The same whole-corpus links (eflomal has no seed), so target sides can match too.
    (tmp_path / "ray").mkdir()
    shutil.copy(tmp_path / "local" / LINKS_FILE, tmp_path / "ray" / LINKS_FILE)
    manifest = annotate(config(tmp_path, kb_dir, "ray", engine="ray"))
    assert marker.exists(), "the worker of shard 2 should have been killed once"
    assert manifest["shards_written_this_time"] == 5
    assert _no_timings(manifest["counts"]) == _no_timings(local["counts"])
    a, b = _by_key(tmp_path / "local"), _by_key(tmp_path / "ray")
    assert a == b and len(a) == 240
    names = sorted(p.name for p in (tmp_path / "ray" / "shards").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "local" / "shards").iterdir())


def test_ray_over_the_kb_index_equals_local_in_memory(tmp_path, kb_dir, local_ray):
    """Ray tasks receive the index's path and open it; their records equal a local run's
    over the in-memory KB."""
    local = annotate(config(tmp_path, kb_dir, "local"))
    (tmp_path / "ray").mkdir()
    shutil.copy(tmp_path / "local" / LINKS_FILE, tmp_path / "ray" / LINKS_FILE)
    manifest = annotate(config(tmp_path, kb_dir, "ray", engine="ray", kb_index=str(tmp_path / "index")))
    assert (tmp_path / "index" / "index.json").is_file()
    assert _no_timings(manifest["counts"]) == _no_timings(local["counts"])
    assert _by_key(tmp_path / "ray") == _by_key(tmp_path / "local")


def test_ray_resume_skips_finished_shards(tmp_path, kb_dir, local_ray):
    cfg = config(tmp_path, kb_dir, "run", engine="ray")
    annotate(cfg)
    run = tmp_path / "run"
    before = _by_key(run)
    (run / "shards" / "shard-00003.jsonl").unlink()
    kept = (run / "shards" / "shard-00000.jsonl").stat().st_mtime_ns
    manifest = annotate(cfg, resume=True)
    assert manifest["shards_written_this_time"] == 1
    assert (run / "shards" / "shard-00000.jsonl").stat().st_mtime_ns == kept
    # Resuming with the other engine is allowed: the engine does not change the records.
    manifest = annotate(config(tmp_path, kb_dir, "run"), resume=True)
    assert manifest["shards_written_this_time"] == 0
    assert _by_key(run) == before


def test_ray_options_are_checked(tmp_path, kb_dir):
    with pytest.raises(RunError, match="--engine ray"):
        config(tmp_path, kb_dir, "x", ray_address="auto").validate()
    with pytest.raises(RunError, match="local or ray"):
        config(tmp_path, kb_dir, "x", engine="spark").validate()
    result = CliRunner().invoke(app, [
        "annotate", "--corpus", str(tmp_path / "corpus.tsv"), "--src-lang", "en", "--tgt-lang",
        "fr", "--kb", str(kb_dir), "--out", str(tmp_path / "y"), "--engine", "spark"])
    assert result.exit_code == 2 and "local or ray" in result.output


@dataclass(frozen=True)
class _Config:
    priors: str | None = None


@dataclass
class _Annotator:
    config: _Config


def test_a_workers_priors_file_goes_with_its_annotator(local_ray):
    from xlre.annotate import ray_engine

    priors = [ray.put(b"LEX\tparis\tparis\t1\n")]
    first = ray_engine._worker_annotator([ray.put(_Annotator(_Config()))], priors)
    path = Path(first.config.priors)
    assert path.read_bytes() == b"LEX\tparis\tparis\t1\n"
    second = ray_engine._worker_annotator([ray.put(_Annotator(_Config()))], priors)
    assert not path.exists() and not path.parent.exists(), "the first run's priors are left"
    assert Path(second.config.priors).is_file()
    ray_engine._ANNOTATOR[next(iter(ray_engine._ANNOTATOR))][1].cleanup()
    ray_engine._ANNOTATOR.clear()
