from __future__ import annotations

from pathlib import Path

import pytest

from alignment.aligners.base import AlignerError
from alignment.aligners.eflomal import EflomalAligner
from alignment.corpus import ParallelCorpus
from alignment.errors import CorpusError
from alignment.pipeline import align_corpus
from alignment.records import Links
from alignment.spans import tokens_from_spans
from alignment.symmetrize import symmetrize
from alignment.tokenize import Tokenizer
from tests.helpers.toy import toy_pairs


def identity_recall(links, pairs) -> float:
    hits = total = 0
    for lk, (src, _) in zip(links, pairs, strict=True):
        gold = {(k, k) for k in range(len(src))}
        hits += len(lk.pairs() & gold)
        total += len(gold)
    return hits / total


def test_eflomal_learns_the_toy_lexicon() -> None:
    pairs = toy_pairs(300)
    aligner = EflomalAligner(symmetrize_method="grow-diag-final-and")
    links = aligner.align([s for s, _ in pairs], [t for _, t in pairs])
    assert len(links) == len(pairs)
    assert identity_recall(links, pairs) > 0.9
    for lk in links:
        assert all(link.score in (0.5, 1.0) for lk_ in [lk] for link in lk_)


def test_extra_text_is_trained_on_but_not_returned() -> None:
    pairs = toy_pairs(300, seed=1)
    aligner = EflomalAligner(symmetrize_method="intersect")
    assert aligner.add_training_text([s for s, _ in pairs], [t for _, t in pairs]) == 300
    few = toy_pairs(5, seed=2)
    links = aligner.align([s for s, _ in few], [t for _, t in few])
    assert len(links) == 5
    assert identity_recall(links, few) > 0.8, "5 pairs alone are too few; extra text must help"


def test_priors_round_trip(tmp_path: Path) -> None:
    pairs = toy_pairs(300, seed=3)
    trained = EflomalAligner(symmetrize_method="intersect")
    trained.align([s for s, _ in pairs], [t for _, t in pairs])
    priors = tmp_path / "priors.txt"
    trained.save_priors(priors)
    text = priors.read_text(encoding="utf-8")
    assert "LEX\tdog\tchien\t" in text and "HMMF\t" in text

    shard = toy_pairs(8, seed=4)
    with_priors = EflomalAligner(symmetrize_method="intersect", priors=priors)
    assert not with_priors.needs_whole_corpus
    links = with_priors.align([s for s, _ in shard], [t for _, t in shard])
    assert identity_recall(links, shard) > 0.8


def test_priors_counted_in_the_background_are_those_counted_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import alignment.parallel_tokenize as parallel_tokenize

    monkeypatch.setattr(parallel_tokenize, "default_workers", lambda: 2)  # a 1-core runner too
    aligner = EflomalAligner(symmetrize_method="intersect")
    background = tmp_path / "run" / "priors.txt"
    aligner.save_priors_when_trained(background)
    first = toy_pairs(300, seed=3)
    aligner.align([s for s, _ in first], [t for _, t in first])
    assert aligner._background is not None and aligner._background[0] == background
    # a second training waits for the first count (it rewrites the files that count reads)
    second = toy_pairs(200, seed=5)
    aligner.align([s for s, _ in second], [t for _, t in second])
    aligner.save_priors(background)
    assert aligner._background is None and not (tmp_path / "run" / "priors.txt.tmp").exists()
    recounted = tmp_path / "recounted.txt"
    aligner.save_priors(recounted, workers=1)  # counted here, from the second training's files
    assert background.read_bytes() == recounted.read_bytes()
    assert "LEX\tdog\tchien\t" in background.read_text(encoding="utf-8")


def test_a_failed_background_count_is_raised_by_save_priors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import alignment.parallel_tokenize as parallel_tokenize

    monkeypatch.setattr(parallel_tokenize, "default_workers", lambda: 2)
    aligner = EflomalAligner(symmetrize_method="intersect")
    target = tmp_path / "priors.txt"
    aligner.save_priors_when_trained(target)
    # the training text, which only the priors count reads again, is cut short after
    # eflomal has trained on it and before the count starts
    real_run = aligner._run

    def run_then_damage(*args: object) -> None:
        real_run(*args)  # type: ignore[arg-type]
        (aligner._dir / "text.src").write_text("dog\n", encoding="utf-8")

    monkeypatch.setattr(aligner, "_run", run_then_damage)
    pairs = toy_pairs(50, seed=6)
    links = aligner.align([s for s, _ in pairs], [t for _, t in pairs])
    assert len(links) == 50  # the links themselves are read as before
    with pytest.raises(AlignerError, match="line 1: a link points past the end"):
        aligner.save_priors(target)
    assert not target.exists()


def test_bad_priors_file_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.txt"
    bad.write_text("LEX\ta\tb\t1\nHMMF\tx\t2\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"p.txt:2: a count field is not a number"):
        EflomalAligner(priors=bad)
    with pytest.raises(AlignerError, match="no alignment has been run"):
        EflomalAligner().save_priors(tmp_path / "never.txt")


def test_too_long_pairs_are_refused_not_emptied(tmp_path: Path) -> None:
    long_src = " ".join(f"w{i % 40}" for i in range(1100))
    lines = [" ".join(s) + "\t" + " ".join(t) for s, t in toy_pairs(60)]
    lines.insert(10, f"{long_src}\tcourt")
    corpus_path = tmp_path / "c.tsv"
    corpus_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    en, fr = Tokenizer("en", pretokenized=True), Tokenizer("fr", pretokenized=True)

    with pytest.raises(CorpusError, match=r"c.tsv:11: the pair has 1100 source"):
        align_corpus(ParallelCorpus(corpus_path, "en", "fr"), EflomalAligner(), tmp_path / "o", en, fr)
    assert not (tmp_path / "o").exists(), "no half-written output on failure"

    corpus = ParallelCorpus(corpus_path, "en", "fr", skip_bad=True)
    summary = align_corpus(corpus, EflomalAligner(), tmp_path / "o", en, fr)
    out = (tmp_path / "o").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(out) == 61 and out[10] == "" and out[9] != ""
    assert summary.skipped["by_reason"] == {"too_long": 1}
    assert summary.aligned_pairs == 60

    with pytest.raises(AlignerError, match="at most 1023 tokens"):
        EflomalAligner().align([long_src.split()], [["court"]])


@pytest.mark.parametrize("method", ["intersect", "union", "grow-diag", "grow-diag-final",
                                    "grow-diag-final-and"])
def test_pharaoh_text_is_that_of_the_links(method: str) -> None:
    """align_stream_pharaoh (what align_corpus writes) renders exactly the Links that
    symmetrising the same directional links gives, scores included."""
    pairs = [*toy_pairs(200, seed=5), (["solo"], [])]
    aligner = EflomalAligner(symmetrize_method=method)
    lines = list(aligner.align_stream_pharaoh(iter(pairs)))
    assert len(lines) == len(pairs) and lines[-1] == ("", "", 0)
    for (text, scores, n), (f, r) in zip(lines[:-1], aligner.directional_links(), strict=False):
        links = Links.from_pairs(symmetrize(f, r, method),
                                 {p: 0.5 * (p in f) + 0.5 * (p in r) for p in f | r})
        assert (text, scores, n) == (links.to_pharaoh(), links.scores_text(), len(links))
    assert sum(n for _, _, n in lines) > 0


def test_spans_file_gives_back_every_pairs_tokens_line_for_line(tmp_path: Path) -> None:
    lines = [" ".join(s).capitalize() + ", ok!\t" + " ".join(t) + " l'été." for s, t in toy_pairs(40)]
    lines.insert(5, "a line with no tab")  # a bad line: an empty spans line keeps the place
    lines.insert(20, " ".join(f"w{i % 40}" for i in range(1100)) + "\tcourt")  # too long to align
    corpus_path = tmp_path / "c.tsv"
    corpus_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    en, fr = Tokenizer("en"), Tokenizer("fr")
    align_corpus(ParallelCorpus(corpus_path, "en", "fr", skip_bad=True), EflomalAligner(), tmp_path / "o",
                 en, fr, spans_path=tmp_path / "o.spans")
    spans = (tmp_path / "o.spans").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(spans) == len(lines) and spans[5] == ""
    for k, line in enumerate(lines):
        if k == 5:
            continue
        src_text, tgt_text = line.split("\t")
        src_spans, tgt_spans = spans[k].split("\t")
        assert tokens_from_spans(src_text, src_spans) == en(src_text)
        assert tokens_from_spans(tgt_text, tgt_spans) == fr(tgt_text)
    assert not list(tmp_path.glob("*.part"))


def test_tokens_from_spans_refuses_offsets_that_do_not_fit() -> None:
    assert tokens_from_spans("ab cd", "0-2 3-5").tokens == ("ab", "cd")
    assert tokens_from_spans("", "").tokens == ()
    for bad in ("0-2 3-9", "0-2 1-3", "0-0", "0-2 3", "x-1"):
        with pytest.raises(ValueError):
            tokens_from_spans("ab cd", bad)


def test_input_files_written_at_once_are_eflomals_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two-process route writes eflomal's binary input files byte for byte as its
    Aligner.prepare_files does, so eflomal samples from the very same input."""
    import eflomal

    from alignment import parallel_tokenize
    from alignment.aligners import eflomal as module

    pairs = toy_pairs(400, seed=5)
    aligner = EflomalAligner(symmetrize_method="intersect", prefix_len=3)
    seen: dict[str, bytes] = {}

    def keep_inputs(src: str, tgt: str, **kwargs: object) -> None:
        seen["src"], seen["tgt"] = Path(src).read_bytes(), Path(tgt).read_bytes()
        seen["n_samplers"] = kwargs["n_samplers"]  # type: ignore[assignment]
        for name in ("links_filename_fwd", "links_filename_rev"):
            Path(str(kwargs[name])).write_text("0-0\n" * 400, encoding="utf-8")

    monkeypatch.setattr(module, "PARALLEL_PREPARE_FROM", 100)
    monkeypatch.setattr(parallel_tokenize, "default_workers", lambda: 2)  # as on any machine
    monkeypatch.setattr(eflomal, "align", keep_inputs)
    links = aligner.align([s for s, _ in pairs], [t for _, t in pairs])
    assert len(links) == 400 and seen, "the two-process route must have run"
    assert seen["n_samplers"] == aligner.n_samplers
    own = eflomal.Aligner(source_prefix_len=3, target_prefix_len=3)
    src_own, tgt_own = tmp_path / "s.bin", tmp_path / "t.bin"
    with open(aligner._dir / "text.src", encoding="utf-8") as fs, open(
        aligner._dir / "text.tgt", encoding="utf-8"
    ) as ft, open(src_own, "wb") as so, open(tgt_own, "wb") as to:
        own.prepare_files(fs, so, ft, to, None, None)
    assert seen["src"] == src_own.read_bytes() and seen["tgt"] == tgt_own.read_bytes()
    assert not list(aligner._dir.glob("input.*")), "the input files are removed after the run"
