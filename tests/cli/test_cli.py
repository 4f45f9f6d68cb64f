from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xlre.cli import app

runner = CliRunner()


def test_align_writes_one_line_per_input_pair_and_skips_bad(toy_corpus: Path, tmp_path: Path) -> None:
    lines = toy_corpus.read_text(encoding="utf-8").splitlines()
    lines[3] = "only one field"
    lines[7] = "le chien\t"
    corpus = tmp_path / "c.tsv"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.links"
    scores = tmp_path / "out.scores"

    result = runner.invoke(app, [
        "align", "--corpus", str(corpus), "--src-lang", "en", "--tgt-lang", "fr",
        "--out", str(out), "--scores-out", str(scores),
    ])
    assert result.exit_code == 2
    assert "c.tsv:4:" in result.output and "--skip-bad" in result.output
    assert not out.exists()

    result = runner.invoke(app, [
        "align", "--corpus", str(corpus), "--src-lang", "en", "--tgt-lang", "fr",
        "--out", str(out), "--scores-out", str(scores), "--skip-bad",
    ])
    assert result.exit_code == 0, result.output
    links = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(links) == len(lines)
    assert links[3] == "" and links[7] == "" and links[0] != ""
    score_lines = scores.read_text(encoding="utf-8").split("\n")[:-1]
    assert [len(s.split()) for s in score_lines] == [len(lk.split()) for lk in links]
    assert '"wrong_field_count": 1' in result.output and '"empty_target": 1' in result.output


def test_align_eval_prints_json(tmp_path: Path) -> None:
    gold = tmp_path / "gold"
    gold.write_text("1-1 2p2\n1-2\n", encoding="utf-8")
    pred = tmp_path / "pred"
    pred.write_text("0-0 1-1\n0-0\n", encoding="utf-8")
    result = runner.invoke(app, ["align-eval", "--gold", str(gold), "--pred", str(pred), "--gold-one-indexed"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    # |A| = 3, |S| = 2, |A&S| = 1, |A&P| = 2
    assert scores == {"aer": 1 - 3 / 5, "precision": 2 / 3, "recall": 0.5, "pairs": 2}


def test_align_eval_line_count_mismatch(tmp_path: Path) -> None:
    (tmp_path / "g").write_text("0-0\n0-0\n", encoding="utf-8")
    (tmp_path / "p").write_text("0-0\n", encoding="utf-8")
    result = runner.invoke(app, ["align-eval", "--gold", str(tmp_path / "g"), "--pred", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert " has 2 lines but " in result.output and " has 1:" in result.output


def test_align_two_files_and_priors(tmp_path: Path, toy_corpus: Path) -> None:
    rows = [line.split("\t") for line in toy_corpus.read_text(encoding="utf-8").splitlines()]
    (tmp_path / "a.en").write_text("\n".join(r[0] for r in rows) + "\n", encoding="utf-8")
    (tmp_path / "a.fr").write_text("\n".join(r[1] for r in rows) + "\n", encoding="utf-8")
    priors = tmp_path / "priors.txt"
    result = runner.invoke(app, [
        "align", "--corpus", str(tmp_path / "a.en"), "--tgt-file", str(tmp_path / "a.fr"),
        "--src-lang", "en", "--tgt-lang", "fr", "--out", str(tmp_path / "o1"),
        "--save-priors", str(priors), "--symmetrize", "grow-diag-final-and",
    ])
    assert result.exit_code == 0, result.output
    assert priors.stat().st_size > 0
    (tmp_path / "shard.tsv").write_text("the dog sees the cat\tle chien voit le chat\n", encoding="utf-8")
    result = runner.invoke(app, [
        "align", "--corpus", str(tmp_path / "shard.tsv"), "--src-lang", "en", "--tgt-lang", "fr",
        "--out", str(tmp_path / "o2"), "--priors", str(priors),
    ])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o2").read_text(encoding="utf-8") == "0-0 1-1 2-2 3-3 4-4\n"


def test_align_rejects_bad_options(tmp_path: Path, toy_corpus: Path) -> None:
    base = ["align", "--corpus", str(toy_corpus), "--src-lang", "en", "--tgt-lang", "fr", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*base, "--aligner", "fastalign"])
    assert result.exit_code == 2 and "eflomal, simalign or combined" in result.output
    result = runner.invoke(app, [*base, "--symmetrize", "both"])
    assert result.exit_code == 2 and "grow-diag-final-and" in result.output
    result = runner.invoke(app, [*base, "--aligner", "simalign", "--extra-corpus", str(toy_corpus)])
    assert result.exit_code == 2 and "eflomal (or combined) only" in result.output
    result = runner.invoke(app, [*base, "--tgt-lang", "qq"])
    assert result.exit_code == 2 and "unknown language code" in result.output


def test_an_internal_error_is_a_bug_not_a_user_error(tmp_path: Path, monkeypatch) -> None:
    """A ValueError or KeyError from inside xlre is exit 1: one line that says to rerun
    with -v, and under -v the traceback; it is never dressed up as bad input (exit 2)."""
    import alignment.metrics

    (tmp_path / "g").write_text("0-0\n", encoding="utf-8")
    (tmp_path / "p").write_text("0-0\n", encoding="utf-8")
    args = ["align-eval", "--gold", str(tmp_path / "g"), "--pred", str(tmp_path / "p")]

    def broken(*_args, **_kwargs):
        raise ValueError("the scorer is broken")

    monkeypatch.setattr(alignment.metrics, "alignment_error_rate", broken)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "unexpected ValueError: the scorer is broken" in result.output
    assert "rerun with -v" in result.output and "Traceback" not in result.output

    result = runner.invoke(app, ["-v", *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" in result.output and "broken" in result.output
    assert "in broken" in result.output  # the frame that raised is shown

    def missing_key(*_args, **_kwargs):
        raise KeyError("aer")

    monkeypatch.setattr(alignment.metrics, "alignment_error_rate", missing_key)
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "unexpected KeyError" in result.output


def test_file_system_errors_stay_one_line_user_errors(tmp_path: Path, toy_corpus: Path) -> None:
    base = ["align", "--src-lang", "en", "--tgt-lang", "fr", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*base, "--corpus", str(tmp_path / "absent.tsv")])
    assert result.exit_code == 2 and "absent.tsv: no such file" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, [*base, "--corpus", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["align", "--src-lang", "en", "--tgt-lang", "fr", "--corpus", str(toy_corpus),
                                 "--out", str(blocker / "o")])
    assert result.exit_code == 2, result.output
    assert f"{blocker}: File exists" in result.output and "Traceback" not in result.output


def test_an_error_message_is_printed_as_written(capsys) -> None:
    """A line number such as 100 between colons is not an emoji code, nor [x] markup."""
    from xlre.cli.common import fail

    fail("corpus.tsv:100: bad field [x]; fix it")
    err = capsys.readouterr().err
    assert "corpus.tsv:100: bad field [x]; fix it" in err
