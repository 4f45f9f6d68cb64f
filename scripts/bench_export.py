"""Benchmark knowledge-graph export; prints one JSON object.

Writes N synthetic triples (``--n``, default 1,000,000) as ``xlre extract`` JSONL: 200k
entities (half with Wikidata-style ids, half unlinked), 20 relations, facts drawn from
300k distinct ones so that edges aggregate several sentences in two languages. Then
exports them (``--format``, default N-Triples) in a child process and reports the
time, the edge and node counts and the child's peak RSS.

Usage: python scripts/bench_export.py [--n 1000000] [--format nt]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys
from xlre.kg import export
summary = export([sys.argv[1]], sys.argv[2], sys.argv[3])
summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(summary))
"""


def write_triples(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    n_entities, n_facts = 200_000, 300_000
    facts = [(rng.randrange(n_entities), f"P{rng.randrange(1, 21)}", rng.randrange(n_entities))
             for _ in range(n_facts)]

    def arg(e: int, start: int) -> dict:
        text = f"Entity {e}"
        return {"text": text, "kb_id": f"Q{e + 1}" if e % 2 == 0 else None, "label": "ENT",
                "char_start": start, "char_end": start + len(text)}

    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            s, r, o = facts[rng.randrange(n_facts)]
            lang = "en" if i % 2 else "fr"
            sentence = f"Entity {s} and Entity {o} (sentence {i})."
            fh.write(json.dumps({
                "subject": arg(s, 0), "relation": r, "relation_label": f"relation {r}",
                "object": arg(o, len(f"Entity {s} and ")), "score": round(rng.random(), 4),
                "lang": lang, "doc_id": f"doc-{i}", "sentence": sentence,
                "sentence_start": 0, "model": "bench"}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--format", default="nt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "triples.jsonl"
        start = time.perf_counter()
        write_triples(src, args.n)
        generated = time.perf_counter() - start
        out = Path(tmp) / f"graph.{args.format}"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(src), args.format, str(out)],
                              capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in Path(tmp).glob("graph*")) if out.exists() else 0
        report = {"benchmark": "export", "date": time.strftime("%Y-%m-%d"),
                  "input_triples": args.n, "input_mb": round(src.stat().st_size / 2**20),
                  "generate_seconds": round(generated, 1), "export_wall_seconds": round(wall, 1),
                  "triples_per_second": round(args.n / wall), "output_mb": round(size / 2**20),
                  **{k: summary[k] for k in ("edges", "nodes", "format", "peak_rss_mb",
                                             "skipped")}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
