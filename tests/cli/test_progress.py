"""Plain progress lines for jobs whose standard error is a log file, not a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignment.errors import UserError
from tests.helpers.handmade import write_run
from tests.helpers.tiny_models import TINY_CLI_SHAPE
from xlre.cli import app
from xlre.cli.common import PlainProgress, new_bar, progress_bar, progress_interval_s
from xlre.cli.model import _training_progress

FAST = [
    "data.dev_fraction=0.0", "data.test_fraction=0.0", "data.max_seq_length=128",
    "train.learning_rate=1e-2", "train.head_learning_rate=1e-2", "train.batch_size=4",
    "train.warmup_ratio=0.0", "train.early_stopping_patience=0", "train.tracker='none'",
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_plain_lines_at_the_interval_with_count_rate_eta_and_loss() -> None:
    clock, out = FakeClock(), io.StringIO()
    with PlainProgress(out, interval_s=30, clock=clock) as bar:
        task = bar.add_task("train epoch 1/2", total=100, unit="batches")
        for step in range(1, 101):
            clock.now += 1.0  # one batch a second
            bar.update(task, advance=1, loss=1.0 / step)
            if step < 30:
                assert out.getvalue() == "", step  # nothing between intervals
            if step == 30:
                assert lines(out) == ["train epoch 1/2: 30/100 batches (30%), 1.0 batches/s, "
                                      "ETA 1m10s, loss 0.0333"]
            if 30 <= step < 60:
                assert len(lines(out)) == 1, step
        assert lines(out)[1] == ("train epoch 1/2: 60/100 batches (60%), 1.0 batches/s, "
                                 "ETA 40s, loss 0.0167")
        assert len(lines(out)) == 4  # at 30, 60, 90 and the final line at 100
        assert lines(out)[3] == ("train epoch 1/2: done, 100/100 batches (100%) in 1m40s, "
                                 "1.0 batches/s, loss 0.0100")
    assert len(lines(out)) == 4  # closing writes no second final line


def test_unknown_total_counts_and_the_final_line_comes_at_close() -> None:
    clock, out = FakeClock(), io.StringIO()
    with progress_bar(None, {"entities": "dump lines read"}, {"entities": "lines"},
                      stream=out, clock=clock) as update:
        clock.now += 5
        update("entities", 1000)  # the task's clock starts when the display opened
        assert out.getvalue() == ""
        clock.now += 3600
        update("entities", 9000)
        assert lines(out) == ["dump lines read: 10000 lines, 2.8 lines/s, 1h00m elapsed"]
        clock.now += 1
        update("entities", 10)
        assert len(lines(out)) == 1
    assert lines(out)[-1] == "dump lines read: done, 10010 lines in 1h00m, 2.8 lines/s"


def test_one_line_per_stage_and_stopped_when_the_command_fails() -> None:
    clock, out = FakeClock(), io.StringIO()
    with pytest.raises(RuntimeError), progress_bar(
            200, {"tokenize": "tokenizing", "align": "aligning (eflomal)"},
            {"tokenize": "pairs", "align": "pairs"}, stream=out, clock=clock) as update:
        clock.now += 2
        update("tokenize", 200)  # reported in one go when the stage is done
        for _ in range(40):
            clock.now += 1
            update("align", 1)
        raise RuntimeError("boom")
    assert lines(out) == [
        "tokenizing: done, 200/200 pairs (100%) in 2s, 100.0 pairs/s",
        "aligning (eflomal): 30/200 pairs (15%), 1.0 pairs/s, ETA 2m50s",
        "aligning (eflomal): stopped, 40/200 pairs (20%) in 40s, 1.0 pairs/s",
    ]


def test_a_terminal_gets_the_rich_bar_and_no_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLRE_PROGRESS_INTERVAL", "0")
    clock, tty = FakeClock(), TtyStream()
    assert not isinstance(new_bar(stream=tty), PlainProgress)
    with progress_bar(10, {"align": "aligning"}, stream=tty, clock=clock) as update:
        for _ in range(10):
            clock.now += 1
            update("align", 1)
    assert tty.getvalue() == ""
    assert isinstance(new_bar(stream=io.StringIO()), PlainProgress)


def test_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XLRE_PROGRESS_INTERVAL", raising=False)
    assert progress_interval_s() == 30
    monkeypatch.setenv("XLRE_PROGRESS_INTERVAL", "2.5")
    assert PlainProgress(io.StringIO()).interval_s == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("XLRE_PROGRESS_INTERVAL", bad)
        with pytest.raises(UserError, match="XLRE_PROGRESS_INTERVAL"):
            progress_interval_s()


def test_training_callback_shows_the_epoch_and_its_loss(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XLRE_PROGRESS_INTERVAL", "0")
    bar, update = _training_progress()  # pytest's stderr is no terminal
    with bar:
        update("epoch", 0, 2)
        for step in range(1, 4):
            update("loss", 1.0 / step, step)
            update("train", 1, 3)
        update("epoch", 1, 2)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("train epoch 1/2: 1/3 batches (33%)") and err[0].endswith("loss 1.0000")
    assert err[2].startswith("train epoch 1/2: done, 3/3 batches") and err[2].endswith("loss 0.3333")
    assert err[3].startswith("train epoch 2/2: done, 0 batches")


def test_align_writes_plain_progress_to_a_log(toy_corpus: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "align", "--corpus", str(toy_corpus), "--src-lang", "en", "--tgt-lang", "fr",
        "--out", str(tmp_path / "out.links")], env={"XLRE_PROGRESS_INTERVAL": "0"})
    assert result.exit_code == 0, result.output
    err = result.stderr.splitlines()
    assert "tokenizing: done, 300/300 pairs (100%)" in "\n".join(err)
    final = [ln for ln in err if ln.startswith("aligning (eflomal): done, 300/300 pairs (100%) in ")]
    assert len(final) == 1 and re.search(r", [0-9.]+ pairs/s$", final[0]), err


def test_train_log_shows_steps_rate_eta_and_loss(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", repeat=4)
    runner = CliRunner()
    enc = tmp_path / "enc"
    result = runner.invoke(app, ["init-model", "--tiny", "--run", str(run), "--out", str(enc),
                                 *TINY_CLI_SHAPE])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--run", str(run), "--model", str(enc), "--out",
                                 str(tmp_path / "model"), *FAST, "train.epochs=2"],
                           env={"XLRE_PROGRESS_INTERVAL": "0"})
    assert result.exit_code == 0, result.output
    err = result.stderr.splitlines()
    step = re.compile(r"^train epoch 1/2: \d+/(\d+) batches \(\d+%\), [0-9.]+ batches/s, "
                      r"ETA \w+, loss \d+\.\d{4}$")
    assert any(step.match(ln) for ln in err), err
    for epoch in (1, 2):
        assert any(ln.startswith(f"train epoch {epoch}/2: done, ") and " loss " in ln
                   for ln in err), err
