"""The run directory: shards, manifests, resume checks, and reading a run back.

::

    RUN_DIR/
      config.json              the resolved configuration (config-I-of-K.json and
                               manifest-I-of-K.json for machine I of a split run)
      alignment.links          whole-corpus word links (eflomal without priors)
      priors.txt               eflomal priors learnt on the corpus (reusable)
      shards/shard-00000.jsonl one JSON object per sentence and language
      shards/shard-00000.stats.json
      manifest.json            config, versions, counts, timings, projection report

Shards are written atomically (temporary name, then rename), so a resumed run keeps
every finished shard as it is and redoes only the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from xlre.annotate.config import AnnotateConfig, RunError

SHARD_DIR = "shards"
LINKS_FILE = "alignment.links"
PRIORS_FILE = "priors.txt"


def merge_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum shard statistics (as written to ``*.stats.json``)."""
    total: dict[str, Any] = {}
    for s in stats:
        for key, value in s.items():
            if isinstance(value, dict):
                total[key] = merge_stats([total.get(key, {}), value])
            elif isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total



def shard_name(shard_no: int) -> str:
    return f"shard-{shard_no:05d}"


def encode_records(records: list[dict[str, Any]]) -> bytes:
    """A shard's records as the bytes of its JSONL file."""
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records).encode("utf-8")


def write_shard(shard_dir: Path, shard_no: int, records: list[dict[str, Any]] | bytes,
                 stats: dict[str, Any]) -> None:
    """Write a shard atomically; ``records`` may come already encoded (``encode_records``)."""
    base = shard_dir / shard_name(shard_no)
    tmp_stats = base.with_suffix(".stats.json.tmp")
    tmp_data = base.with_suffix(".jsonl.tmp")
    tmp_stats.write_text(json.dumps(stats, sort_keys=True) + "\n", encoding="utf-8")
    data = records if isinstance(records, bytes) else encode_records(records)
    with open(tmp_data, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    # stats first: a data file never exists without its stats
    os.replace(tmp_stats, base.with_suffix(".stats.json"))
    os.replace(tmp_data, base.with_suffix(".jsonl"))


def finished_shards(run_dir: Path) -> set[int]:
    """Shard numbers whose data file is complete (written by rename)."""
    out = set()
    for path in (run_dir / SHARD_DIR).glob("shard-*.jsonl"):
        out.add(int(path.stem.split("-")[1]))
    return out



def part_suffix(config: AnnotateConfig) -> str:
    """'' for a whole run; '-I-of-K' for machine I of a run split K ways."""
    return "" if config.num_shards == 1 else f"-{config.shard_index}-of-{config.num_shards}"


def check_resume(run_dir: Path, config: AnnotateConfig, resume: bool) -> None:
    cfg_path = run_dir / f"config{part_suffix(config)}.json"
    if not cfg_path.exists():
        if resume and (run_dir / SHARD_DIR).exists():
            raise RunError(f"{run_dir}: no config.json to resume from; start a new run")
        return
    if not resume:
        raise RunError(
            f"{run_dir} already holds a run. Fix: pass --resume to continue it, or choose "
            "another --out (or delete the directory)"
        )
    old = json.loads(cfg_path.read_text(encoding="utf-8"))
    new = asdict(config)
    # A field added after the run was made counts as its default; the neural aligner's
    # settings do not matter to an eflomal run.
    defaults = {f.name: f.default for f in fields(AnnotateConfig)} | AnnotateConfig.BEFORE_FIELD
    unused = ("model", "layer", "confident") if config.aligner == "eflomal" else ()
    diff = [k for k in new if k not in AnnotateConfig.RESUMABLE_FIELDS and k not in unused
            and json.dumps(old.get(k, defaults[k])) != json.dumps(new[k])]
    if diff:
        raise RunError(
            f"cannot resume {run_dir}: the settings differ from the run's config.json in "
            f"{', '.join(diff)}. Fix: resume with the same settings, or start a new --out"
        )



def shard_files(run_dir: Path | str) -> list[Path]:
    run_dir = Path(run_dir)
    files = sorted((run_dir / SHARD_DIR).glob("shard-*.jsonl"))
    if not files:
        raise RunError(f"{run_dir}: no shards found; is this an annotation run directory?")
    return files


def iter_records(run_dir: Path | str) -> Iterator[dict[str, Any]]:
    """Every sentence record of a run, shard by shard, in corpus order."""
    for path in shard_files(run_dir):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def load_run(run_dir: Path | str) -> Any:
    """The run's records as a ``datasets.Dataset`` (one row per sentence and language)."""
    import datasets

    files = [str(p) for p in shard_files(run_dir)]
    return datasets.load_dataset("json", data_files=files, split="train")


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    """The run's manifest(s); several (one per machine of a split run) are summed."""
    run_dir = Path(run_dir)
    paths = sorted(run_dir.glob("manifest*.json"))
    if not paths:
        raise RunError(f"{run_dir}: no manifest.json; is this a finished annotation run?")
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    if len(manifests) == 1:
        return manifests[0]
    merged = dict(manifests[0])
    merged["counts"] = merge_stats([m["counts"] for m in manifests])
    merged["shards"] = sorted(s for m in manifests for s in m["shards"])
    return merged


def dump_record(rec: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a sentence record (what ``xlre runs dump`` prints)."""
    return {
        "pair_id": rec["pair_id"],
        "lang": rec["lang"],
        "text": rec["text"],
        "entities": [
            {k: e[k] for k in ("char_start", "char_end", "text", "kb_id", "label", "source")}
            for e in rec["entities"]
        ],
        "relations": [
            {"head": r["head"], "tail": r["tail"], "relation": r["relation"]} for r in rec["relations"]
        ],
    }
