"""The run directory: shards, manifests, resume checks, and reading a run back.

::

    RUN_DIR/
      config.json              the resolved configuration (config-I-of-K.json and
                               manifest-I-of-K.json for machine I of a split run)
      corpus.json              the corpus's line count and content hash, checked on resume
      alignment.links          whole-corpus word links (eflomal without priors)
      priors.txt               eflomal priors learnt on the corpus (reusable)
      shards/shard-00000.jsonl one JSON object per sentence and language
      shards/shard-00000.stats.json
      manifest.json            config, versions, counts, timings, projection report

Shards are written atomically (temporary name, then rename), so a resumed run keeps
every finished shard as it is and redoes only the rest. A resumed run checks that the
corpus is the one the run began with (``corpus.json``) and that the stored links cover
it line for line. A run is read back (:func:`shard_files`, :func:`read_manifest`) only
when every part has written its manifest: an unfinished run refuses, naming the parts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import orjson

from alignment.textfile import chunks, count_lines
from xlre.annotate.config import AnnotateConfig, RunError

logger = logging.getLogger(__name__)

SHARD_DIR = "shards"
LINKS_FILE = "alignment.links"
#: Each pair's token offsets from the alignment stage (alignment.pipeline.align_corpus's
#: ``spans_path``), so the shards rebuild its tokens instead of tokenizing again.
SPANS_FILE = "tokens.spans"
PRIORS_FILE = "priors.txt"
CORPUS_FILE = "corpus.json"
_PART = re.compile(r"^(?:config|manifest)-(\d+)-of-(\d+)\.json$")


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
    """A shard's records as the bytes of its JSONL file (UTF-8, compact JSON: orjson
    encodes them about 6 times as fast as json)."""
    return b"".join(orjson.dumps(rec) + b"\n" for rec in records)


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


def stale_temporaries(shard_dir: Path, config: AnnotateConfig) -> list[Path]:
    """This part's leftover ``*.tmp`` shard files (a killed writer's), never another
    part's: machines sharing a run directory each write only their own shards."""
    out = []
    for path in shard_dir.glob("shard-*.tmp"):
        number = path.name.split(".", 1)[0].removeprefix("shard-")
        if number.isdigit() and int(number) % config.num_shards == config.shard_index:
            out.append(path)
    return sorted(out)


def _file_print(path: Path) -> dict[str, Any]:
    """Line count and SHA-256 of ``path``'s content (decompressed, for ``.gz``)."""
    digest = hashlib.sha256()
    lines, last = 0, b"\n"
    for chunk in chunks(path):
        digest.update(chunk)
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    return {"path": str(path), "lines": lines + (0 if last == b"\n" else 1),
            "sha256": digest.hexdigest()}


def corpus_fingerprint(config: AnnotateConfig) -> dict[str, Any]:
    """What ``corpus.json`` stores: each corpus file's line count and content hash."""
    paths = [config.corpus] + ([config.tgt_file] if config.tgt_file else [])
    return {"files": [_file_print(Path(p)) for p in paths]}


def check_corpus(run_dir: Path, config: AnnotateConfig, links_path: Path | None,
                 spans_path: Path | None = None) -> None:
    """Refuse a run whose corpus is not the one it began with, or whose stored links do
    not cover the corpus line for line; record the fingerprint on a new run.

    A resumed run projects through ``alignment.links``, read in step with the corpus, so
    a changed or appended corpus would pair sentences with another pair's links.
    """
    now = corpus_fingerprint(config)
    path = run_dir / CORPUS_FILE
    if path.exists():
        then = json.loads(path.read_text(encoding="utf-8"))
        for old, new in zip(then["files"], now["files"], strict=False):
            if (old["lines"], old["sha256"]) != (new["lines"], new["sha256"]):
                raise RunError(
                    f"{run_dir}: the corpus is not the one this run began with: {new['path']} "
                    f"has {new['lines']} lines (sha256 {new['sha256'][:12]}) now, "
                    f"{old['path']} had {old['lines']} lines (sha256 {old['sha256'][:12]}). "
                    "Fix: resume with the run's own corpus, or annotate the new corpus into "
                    "a new --out")
        if len(then["files"]) != len(now["files"]):
            raise RunError(f"{run_dir}: the run began with {len(then['files'])} corpus file(s), "
                           f"this resume gives {len(now['files'])}. Fix: give the same "
                           "--corpus/--tgt-file as the run began with")
    else:
        if (run_dir / SHARD_DIR).exists() and any((run_dir / SHARD_DIR).glob("shard-*.jsonl")):
            logger.warning("%s: made before xlre stored the corpus fingerprint; the corpus "
                           "cannot be checked against it, only the links' length", run_dir)
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(now, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    for path, what in ((links_path, "word links"), (spans_path, "token offsets")):
        if path is not None and path.exists():
            expected = now["files"][0]["lines"]
            have = count_lines(path)
            if have != expected:
                raise RunError(
                    f"{path}: {have} lines of {what} for a corpus of {expected} lines; "
                    f"the {what} belong to another corpus or were cut short. Fix: start the "
                    "run again in a new --out (its shards were made from these files)")


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



def unfinished_parts(run_dir: Path | str) -> list[str]:
    """The parts of a run that have not written their manifest, as ``"i of K"`` (or
    ``"the run"`` for a whole run); empty when the run is complete.

    A run split K ways is complete when all K manifests are there, whichever machines
    have started; a whole run when ``manifest.json`` is.
    """
    run_dir = Path(run_dir)
    splits: set[int] = set()
    done: set[tuple[int, int]] = set()
    for path in run_dir.glob("*.json"):
        m = _PART.match(path.name)
        if m:
            index, k = int(m.group(1)), int(m.group(2))
            splits.add(k)
            if path.name.startswith("manifest"):
                done.add((index, k))
    whole = (run_dir / "config.json").exists() or (run_dir / "manifest.json").exists()
    if len(splits) + whole > 1:
        kinds = sorted(f"{k} ways" for k in splits) + (["whole"] if whole else [])
        raise RunError(f"{run_dir}: holds parts of differently split runs ({', '.join(kinds)}); "
                       "Fix: annotate each split into its own --out")
    if whole:
        return [] if (run_dir / "manifest.json").exists() else ["the run"]
    if not splits:
        return []
    (k,) = splits
    return [f"{i} of {k}" for i in range(k) if (i, k) not in done]


def check_finished(run_dir: Path | str) -> None:
    """Refuse a run that is still being written or was interrupted (see ``unfinished_parts``)."""
    missing = unfinished_parts(run_dir)
    if missing == ["the run"]:
        raise RunError(f"{run_dir}: the run has not finished (no manifest.json). Fix: "
                       "finish it with `xlre annotate ... --resume` (same settings)")
    if missing:
        raise RunError(
            f"{run_dir}: the run is split {missing[0].split(' of ')[1]} ways and part(s) "
            f"{', '.join(m.split(' of ')[0] for m in missing)} have not finished (no "
            "manifest). Fix: run or resume those parts (`xlre annotate ... --num-shards K "
            "--shard-index I --resume`) before reading the run")


def shard_files(run_dir: Path | str, allow_unfinished: bool = False) -> list[Path]:
    """The run's shard files in corpus order; an unfinished run refuses unless
    ``allow_unfinished``."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / SHARD_DIR).glob("shard-*.jsonl"))
    if not files:
        raise RunError(f"{run_dir}: no shards found; is this an annotation run directory?")
    if not allow_unfinished:
        check_finished(run_dir)
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


def read_manifest(run_dir: Path | str, allow_unfinished: bool = False) -> dict[str, Any]:
    """The run's manifest(s); several (one per machine of a split run) are summed.

    An unfinished split run refuses unless ``allow_unfinished``; then the finished parts
    are summed and ``unfinished_parts`` lists the rest.
    """
    run_dir = Path(run_dir)
    paths = sorted(run_dir.glob("manifest*.json"))
    if not paths:
        raise RunError(f"{run_dir}: no manifest.json; is this a finished annotation run?")
    missing = unfinished_parts(run_dir)
    if missing and not allow_unfinished:
        check_finished(run_dir)
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    merged = dict(manifests[0])
    if len(manifests) > 1:
        merged["counts"] = merge_stats([m["counts"] for m in manifests])
        merged["shards"] = sorted(s for m in manifests for s in m["shards"])
    if missing:
        merged["unfinished_parts"] = missing
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
