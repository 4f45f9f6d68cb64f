"""Issue 21: a ``kill -9`` of training during ``save_best``, then loading OUT, gives the
old model or the new one, never a mix, and the next save or start cleans up after it.

A child process (this module run with ``-m``) builds an old and a new model once, writes
the old one into a template OUT (with a checkpoint and settings beside it), then forks
one worker per kill point. A worker copies the template and runs the real
``Trainer.save_best`` of the new model into the copy, with an audit hook that counts every
filesystem change it makes (each file opened for writing, directory made, hard link,
chmod, rename, removal, and the exchange) plus one point halfway through writing the weights; at
change number ``k`` it reports its pid and sleeps, and the test sends it SIGKILL there.
The test then loads the copy with :func:`xlre.modeling.model.load_model_dir` (what
``xlre extract`` and ``xlre evaluate`` use) and checks it against both models.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers.modeling_utils as modeling_utils
from accelerate import Accelerator
from safetensors.torch import save as safetensors_bytes

from tests.helpers.handmade import write_run
from tests.helpers.tiny_models import build_tiny_xlmr
from xlre.data import LabelMaps
from xlre.modeling import XlreModel
from xlre.modeling.model import load_model_dir
from xlre.training import Trainer, TrainError, loop
from xlre.training.loop import recover_model_dir
from xlre.training.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
#: Files of OUT that are not the model: carried across a save unchanged.
CARRIED = ("train.toml", "metrics.json", "checkpoints/step-00000003/trainer_state.json")
#: Audit events that change the filesystem (``open`` only when opened for writing).
CHANGES = frozenset({
    "os.mkdir", "os.rename", "os.replace", "os.link", "os.symlink", "os.chmod", "os.chown",
    "os.utime", "os.truncate", "os.remove", "os.rmdir", "shutil.rmtree", "shutil.copyfile",
    "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move",
    # Looking up renameat2, just before the exchange (the call itself raises no event).
    "ctypes.dlsym",
})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
NO_KILL = 10**6
TIMEOUT = 120


# ---------------------------------------------------------------------------- the child
def _trainer(encoder: Path, out: Path | None, seed: int, **settings) -> SimpleNamespace:
    """What ``Trainer.save_best`` reads of a trainer, around a real XlreModel."""
    labels = LabelMaps(("PER", "LOC"), ("born_in", "lives_in"))
    model, tokenizer = XlreModel.from_encoder(str(encoder), labels, **settings)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return SimpleNamespace(accelerator=Accelerator(cpu=True), model=model, tokenizer=tokenizer,
                           out_dir=out, main=True)


def _template(encoder: Path, out: Path) -> None:
    """OUT with the old model (pooling, threshold 0.5), settings and a checkpoint."""
    Trainer.save_best(_trainer(encoder, out, seed=1, relation_threshold=0.5))
    for name in CARRIED:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(f"{name} of the run\n", encoding="utf-8")


def _worker(case: Path, template: Path, mode: str, kill_at: int, new: SimpleNamespace) -> None:
    """Save ``new`` over a copy of ``template``, stopping at filesystem change ``kill_at``."""
    shutil.copytree(template.parent, case, symlinks=True)
    changes: list[str] = []
    armed = False

    def point(what: str) -> None:
        what = re.sub(r"\.(partial|old)-[0-9a-f]{8}", r".\1-XXXX", what.replace(str(case), "."))
        changes.append(what)
        if len(changes) - 1 == kill_at:
            print("PAUSED", kill_at, os.getpid(), json.dumps(changes[-1]), flush=True)
            time.sleep(TIMEOUT)  # the test kills us here
            os._exit(3)

    def hook(event: str, args: tuple) -> None:
        nonlocal armed
        if not armed:
            return
        if event == "open":
            path, mode_, flags = args
            writes = (any(c in mode_ for c in "wax+") if isinstance(mode_, str)
                      else bool((flags or 0) & WRITE_FLAGS))
            if not (writes and isinstance(path, str | bytes | os.PathLike)):
                return
        elif event not in CHANGES:
            return
        armed = False  # no recursion from what point() does
        try:
            shown = [str(a) for a in args if isinstance(a, str | bytes | os.PathLike)]
            point(" ".join([event, *shown]))
        finally:
            armed = True

    real_save = modeling_utils.safe_save_file

    def halfway(tensors, filename, metadata=None):
        data = safetensors_bytes(tensors, metadata)
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2])
        point(f"halfway through writing {filename}")
        return real_save(tensors, filename, metadata=metadata)

    modeling_utils.safe_save_file = halfway
    if mode == "naive":  # the in-place save that 36e72d4 replaced
        loop.replace_model_dir = lambda out_dir, write: write(Path(out_dir))
    elif mode == "fallback":  # no atomic exchange: the two-rename swap
        loop._exchange = lambda a, b: False
    sys.addaudithook(hook)
    new.out_dir = case / "model"
    armed = True
    Trainer.save_best(new)
    armed = False
    print("DONE", kill_at, json.dumps(changes), flush=True)


def _child(work: Path, encoder: Path) -> None:
    torch.set_num_threads(1)  # no thread pool to be broken by fork
    template = work / "template" / "model"
    _template(encoder, template)
    new = _trainer(encoder, None, seed=2, relation_repr="markers", relation_threshold=0.3)
    print("READY", flush=True)
    for line in sys.stdin:
        mode, kill_at = line.split()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _worker(work / f"{mode}-{kill_at}", template, mode, int(kill_at), new)
                code = 0
            finally:
                sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print("REAPED", kill_at, os.waitstatus_to_exitcode(status), flush=True)


# ---------------------------------------------------------------------------- the test
class Child:
    """The forking child, driven line by line."""

    def __init__(self, work: Path, encoder: Path) -> None:
        self.work = work
        self.log = (work / "child.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.training.test_save_best_kill", str(work), str(encoder)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._next("READY") == ["READY"]

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _next(self, *kinds: str) -> list[str]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            kind = line.split(" ", 1)[0]
            if kind in kinds:  # PAUSED k pid what, DONE k changes, REAPED k code
                return line.split(" ", 3 if kind == "PAUSED" else 2)

    def run(self, mode: str, kill_at: int) -> tuple[str | None, Path]:
        """Save, killed with SIGKILL at change ``kill_at``; ``(what it was about to do,
        OUT)``, or ``(None, OUT)`` when the save has fewer changes and completed."""
        self.proc.stdin.write(f"{mode} {kill_at}\n")
        self.proc.stdin.flush()
        msg = self._next("PAUSED", "DONE", "REAPED")
        out = self.work / f"{mode}-{kill_at}" / "model"
        assert msg[0] != "REAPED", f"the save failed (exit {msg[2]}); see {self.work}/child.log"
        if msg[0] == "DONE":
            assert self._next("REAPED") == ["REAPED", str(kill_at), "0"]
            self.changes = json.loads(msg[2])
            return None, out
        os.kill(int(msg[2]), signal.SIGKILL)
        assert self._next("REAPED") == ["REAPED", str(kill_at), str(-signal.SIGKILL)]
        return json.loads(msg[3]), out

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=TIMEOUT)
        self.log.close()


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_tiny_xlmr(tmp_path_factory.mktemp("enc"), corpus=["a small corpus", "un petit"])


@pytest.fixture(scope="module")
def child(tmp_path_factory, encoder_dir):
    c = Child(tmp_path_factory.mktemp("kill"), encoder_dir)
    yield c
    c.close()


@pytest.fixture(scope="module")
def sides(child):
    """``{"old": dir, "new": dir}``: the template and a save that ran to the end."""
    done, new = child.run("exchange", NO_KILL)
    assert done is None
    return {"old": child.work / "template" / "model", "new": new}


def _files(model_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(model_dir)): p.read_bytes()
            for p in sorted(model_dir.rglob("*")) if p.is_file()}


def _model_files(model_dir: Path) -> dict[str, bytes]:
    return {k: v for k, v in _files(model_dir).items() if k not in CARRIED}


def side_of(out: Path, sides: dict[str, Path]) -> str:
    """"old" or "new" when OUT's model files are exactly one side's, else what is wrong."""
    if not (out / "config.json").is_file():
        return f"no model: {sorted(p.name for p in out.parent.iterdir())}"
    files = _model_files(out)
    for name, ref in sides.items():
        if files == _model_files(ref):
            return name
    parts = {f: [s for s, ref in sides.items() if _model_files(ref).get(f) == data] or ["none"]
             for f, data in files.items()}
    return f"mix: {parts}"


def check_loads_as(out: Path, side: Path) -> None:
    """OUT loads with the real loader, to exactly ``side``'s weights, labels and tokenizer,
    and the rest of OUT (settings, checkpoints) is untouched."""
    model, tokenizer = load_model_dir(out)
    ref_model, ref_tokenizer = load_model_dir(side)
    got, want = model.state_dict(), ref_model.state_dict()
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert torch.equal(got[name], value), name
    config, ref_config = model.config.to_dict(), ref_model.config.to_dict()
    config.pop("_name_or_path")  # where it was loaded from
    ref_config.pop("_name_or_path")
    assert config == ref_config
    assert tokenizer.get_vocab() == ref_tokenizer.get_vocab()
    for name in CARRIED:
        assert (out / name).read_text(encoding="utf-8") == f"{name} of the run\n", name


def _kill_everywhere(child, mode: str):
    """``(k, what the save was about to do, OUT)`` for every change of one save."""
    k = 0
    while True:
        what, out = child.run(mode, k)
        if what is None:
            return
        yield k, what, out
        k += 1


def test_the_two_sides_differ_in_every_model_file(sides):
    old, new = _model_files(sides["old"]), _model_files(sides["new"])
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(old) <= set(new)
    assert all(old[f] != new[f] for f in old), [f for f in old if old[f] == new[f]]
    check_loads_as(sides["new"], sides["new"])
    assert sorted(p.name for p in sides["new"].parent.iterdir()) == ["model"]


def test_a_kill_anywhere_in_save_best_leaves_the_old_or_the_new_model(child, sides, encoder_dir):
    third = _trainer(encoder_dir, None, seed=3)
    seen = []
    for k, what, out in _kill_everywhere(child, "exchange"):
        side = side_of(out, sides)
        seen.append((what, side))
        assert side in sides, (k, what, side)
        check_loads_as(out, sides[side])
        # The next save ignores and removes what the killed one left, and replaces OUT.
        third.out_dir = out
        Trainer.save_best(third)
        assert sorted(p.name for p in out.parent.iterdir()) == ["model"], (k, what)
        assert (out / "model.safetensors").read_bytes() != sides[side].joinpath(
            "model.safetensors").read_bytes()
        for name in CARRIED:
            assert (out / name).read_text(encoding="utf-8") == f"{name} of the run\n"
    whats = [w for w, _ in seen]
    assert whats == child.changes  # every change of the completed save was a kill point
    # The sequence was covered: weights written (and cut halfway), tokenizer, links, swap.
    for step in ("model.partial-", "halfway through writing", "config.json", "tokenizer",
                 "os.link", "ctypes.dlsym", "shutil.rmtree"):
        assert any(step in w for w in whats), step
    swap = next(i for i, w in enumerate(whats) if w.startswith("ctypes.dlsym"))
    assert [s for _, s in seen] == ["old"] * (swap + 1) + ["new"] * (len(seen) - swap - 1)


def test_without_the_atomic_exchange_the_next_start_puts_the_old_model_back(
        child, sides, encoder_dir, tmp_path):
    missing = []
    for k, what, out in _kill_everywhere(child, "fallback"):
        side = side_of(out, sides)
        if side.startswith("no model"):
            missing.append((k, what))
            leftovers = sorted(p.name for p in out.parent.iterdir())
            assert [n.split("-")[0] for n in leftovers] == ["model.old", "model.partial"]
            if len(missing) == 1:  # the next `xlre train` recovers before anything else
                settings = load_settings(None, ["train.tracker='none'"])
                with pytest.raises(TrainError, match="pass --resume"):
                    Trainer.prepare(write_run(tmp_path / "run"), str(encoder_dir), out,
                                    settings)
            else:
                recover_model_dir(out)
            side = side_of(out, sides)
            assert side == "old", (k, what, side)
        else:
            assert side in sides, (k, what, side)
            recover_model_dir(out)
            assert side_of(out, sides) == side
        check_loads_as(out, sides[side])
        assert sorted(p.name for p in out.parent.iterdir()) == ["model"], (k, what)
    # Only between "OUT moved aside" and "the new model moved in" is OUT missing.
    assert len(missing) == 1, missing
    assert missing[0][1] == "os.rename ./model.partial-XXXX ./model", missing


def test_the_check_catches_an_in_place_save(child, sides):
    """The same kills, on the in-place writer that 36e72d4 replaced: OUT is caught mixed."""
    verdicts = [side_of(out, sides) for _, _, out in _kill_everywhere(child, "naive")]
    assert verdicts[0] == "old"
    assert any(v.startswith("mix:") for v in verdicts), verdicts


if __name__ == "__main__":
    _child(Path(sys.argv[1]), Path(sys.argv[2]))
