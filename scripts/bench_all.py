"""Run every benchmark and write their JSON into one file.

Each benchmark runs in its own process, one after another (never two at once: they
would share the cores), with its exact command, exit status and wall time recorded:

1. ``xlre demo`` (the whole mission on the demo corpus; its model feeds step 6);
2. ``scripts/bench_align.py`` (eflomal AER on Hansards gold, Tatoeba throughput);
3. ``scripts/bench_neural_align.py`` (batched neural aligner against simalign);
4. ``scripts/bench_annotate.py`` (annotation runs and projection quality on RELX);
5. ``scripts/bench_train.py --skip-demo`` (training tokens/s; the demo target is step 1);
6. ``scripts/bench_extract.py`` (held-out extraction quality, sentences/s, 1M-triple
   export).

Benchmarks that need ``../shared/data`` are recorded as skipped when it is absent.

Usage: python scripts/bench_all.py [--out benchmarks.json] [--data ../shared/data]
       [--only demo,align,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["gpu"] = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            info["memory_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def run(name: str, cmd: list[str], needs: Path | None = None) -> dict:
    shown = " ".join(cmd).replace(sys.executable, "python")
    if needs is not None and not needs.exists():
        print(f"[bench_all] {name}: skipped ({needs} not found)", file=sys.stderr)
        return {"command": shown, "skipped": f"{needs} not found"}
    print(f"[bench_all] {name}: {shown}", file=sys.stderr)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = round(time.perf_counter() - start, 1)
    entry: dict = {"command": shown, "exit_code": done.returncode, "wall_seconds": seconds}
    if done.returncode != 0:
        entry["error"] = done.stderr[-2000:]
        print(f"[bench_all] {name}: FAILED ({done.returncode})", file=sys.stderr)
        return entry
    text = done.stdout.strip()
    try:
        entry["result"] = json.loads(text[text.index("{"):]) if "{" in text else text
    except json.JSONDecodeError:
        entry["result"] = text[-4000:]
    print(f"[bench_all] {name}: {seconds} s", file=sys.stderr)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks.json")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--demo-out", type=Path, default=ROOT / "out" / "bench-demo")
    parser.add_argument("--only", default="demo,align,neural_align,annotate,train,extract")
    args = parser.parse_args()
    py = sys.executable
    data = str(args.data)
    tatoeba = args.data / "parallel" / "tatoeba-en-fr.tsv.gz"
    steps = {
        "demo": ([py, "-m", "xlre.cli", "demo", "--out", str(args.demo_out)], None),
        "align": ([py, "scripts/bench_align.py", "--data", data, "--skip-simalign", "--runs",
                   "3"], args.data / "align-gold"),
        "neural_align": ([py, "scripts/bench_neural_align.py", "--pairs", "500", "--tatoeba",
                          str(tatoeba)], tatoeba),
        "annotate": ([py, "scripts/bench_annotate.py", "--data", data, "--workers", "2"],
                     args.data / "kb-wikidata-mtrex"),
        "train": ([py, "scripts/bench_train.py", "--skip-demo", "--run",
                   str(args.demo_out / "run")], None),
        "extract": ([py, "scripts/bench_extract.py", "--model", str(args.demo_out / "model")],
                    None),
    }
    wanted = args.only.split(",")
    unknown = sorted(set(wanted) - set(steps))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(steps)}")
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "benchmarks": {}}
    for name in wanted:
        cmd, needs = steps[name]
        report["benchmarks"][name] = run(name, cmd, needs)
        if name == "demo" and report["benchmarks"][name].get("exit_code") == 0:
            summary = json.loads((args.demo_out / "demo.json").read_text(encoding="utf-8"))
            report["benchmarks"][name]["result"] = summary
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: {kk: v.get(kk) for kk in ("exit_code", "wall_seconds", "skipped")}
                      for k, v in report["benchmarks"].items()}, indent=2))


if __name__ == "__main__":
    main()
