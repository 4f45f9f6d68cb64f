"""Benchmark ``xlre kb build`` on the shared Wikidata sample; prints one JSON object.

Builds a KB (en, fr, zh; a dozen common properties) from all of
``wikidata-sample/sample-all.json.bz2`` of the shared data, reports entities/s (dump
entity lines per second of wall time, both passes included), the KB's counts, and the
time the full dump (~110M entities) would take at that rate.

It also reads the decompressed dump once with nothing else done (``decompress_seconds``),
which bounds the build's rate from that file on this machine (``decompress_only_entities_per_s``).

Usage: python scripts/bench_kb_build.py [--data ../shared/data] [--dump FILE] [--threads N]
       [--workers N] [--runs N]

``--dump`` builds from another copy of the sample (say, recompressed as ``.json.gz``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from xlre.kb.wikidata import BuildSettings, build_kb, open_dump

ROOT = Path(__file__).resolve().parents[1]
FULL_DUMP_ENTITIES = 110_000_000
PROPERTIES = ("P17", "P19", "P20", "P26", "P27", "P36", "P69", "P108", "P131", "P159", "P361",
              "P463")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--dump", type=Path, default=None,
                        help="the dump to build from (default: the shared sample's .json.bz2)")
    parser.add_argument("--threads", type=int, default=None, help="bz2 decompression threads")
    parser.add_argument("--workers", type=int, default=None, help="pass-1 worker processes")
    parser.add_argument("--runs", type=int, default=1, help="builds to time; the median counts")
    args = parser.parse_args()
    dump = args.dump or args.data / "wikidata-sample" / "sample-all.json.bz2"
    if not dump.is_file():
        raise SystemExit(f"{dump}: not found; pass --data PATH/TO/shared/data or --dump FILE")
    settings = BuildSettings(langs=("en", "fr", "zh"), properties=PROPERTIES)
    runs = []
    for _ in range(max(args.runs, 1)):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            manifest = build_kb(dump, Path(tmp) / "kb", settings, threads=args.threads,
                                workers=args.workers)
            runs.append(time.perf_counter() - start)
    seconds = sorted(runs)[len(runs) // 2]
    start = time.perf_counter()
    with open_dump(dump, args.threads) as src:
        while src.read(1 << 22):
            pass
    decompress = time.perf_counter() - start
    n = manifest["counts"]["entity_lines"]
    rate = n / seconds
    print(json.dumps({
        "dump": str(dump), "cpus": os.cpu_count(), "threads": args.threads,
        "workers": args.workers, "entity_lines": n,
        "seconds": round(seconds, 2), "runs_seconds": [round(r, 2) for r in runs],
        "entities_per_s": round(rate),
        "decompress_seconds": round(decompress, 2),
        "decompress_only_entities_per_s": round(n / decompress),
        "counts": manifest["counts"], "aliases_by_language": manifest["aliases_by_language"],
        "full_dump_entities": FULL_DUMP_ENTITIES,
        "full_dump_hours_at_this_rate": round(FULL_DUMP_ENTITIES / rate / 3600, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
