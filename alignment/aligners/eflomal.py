"""Statistical word alignment with eflomal (Östling & Tiedemann, 2016).

eflomal is a Bayesian HMM+fertility aligner trained by Gibbs sampling on the very text
it aligns. More text gives better links, so extra parallel corpora can be added to the
training data (their links are not returned). Both directions are aligned and then
symmetrised (:mod:`alignment.symmetrize`).

Priors: after training, lexical, jump and fertility counts can be saved in eflomal's
priors format (``LEX``/``HMMF``/``HMMR``/``FERF``/``FERR`` lines). Aligning with those
priors lets a huge corpus be trained once and then aligned shard by shard, each shard
seeing the same statistics.

Training forms: eflomal learns from a normalised form of each token, never shown in the
output: casefolded (so ``The``/``the`` and ``Paris``/``paris`` are one word whether or not
a corpus is lowercased), with traditional Chinese characters folded to simplified
(:func:`alignment.script.fold_script`, ``fold_scripts=True``), then cut to ``prefix_len``
characters. Each form is a token of its own (neither fold adds or removes a space), so
the links' token indices are those of the tokens given. Priors are stored in these
forms; priors saved before the forms were casefolded and script-folded still load, but
their traditional Chinese and ``ß``-like entries no longer match.

Per-link score: eflomal gives no link posteriors, so a link's score is the share of the
two directions that found it (1.0 both, 0.5 one).

Limit: eflomal returns no links for a sentence of 1024 tokens or more, so such pairs are
refused (:attr:`EflomalAligner.max_tokens`) instead of coming back silently empty.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from alignment.aligners.base import AlignerError, WordAligner
from alignment.corpus import count_lines
from alignment.errors import CorpusError, SettingError
from alignment.forked import ForkedJob, HelperDied
from alignment.records import Links
from alignment.script import ScriptFoldError, fold_script
from alignment.symmetrize import SYMMETRIZATIONS, symmetrize
from alignment.textfile import strict_lines

logger = logging.getLogger(__name__)

_PRIOR_FIELDS = {"LEX": 4, "HMMF": 3, "HMMR": 3, "FERF": 4, "FERR": 4}


def _import_eflomal():
    try:
        import eflomal
    except ImportError as err:  # pragma: no cover - eflomal is a core dependency
        raise AlignerError(
            "the eflomal aligner needs the `eflomal` package: pip install eflomal"
        ) from err
    return eflomal


def validate_priors(path: Path) -> None:
    """Check an eflomal priors file line by line; raise :class:`CorpusError` if bad."""
    line_no = 0
    for line_no, line in strict_lines(path):
        fields = line.split("\t")
        want = _PRIOR_FIELDS.get(fields[0])
        problem = None
        if want is None:
            problem = f"unknown prior type {fields[0]!r}"
        elif len(fields) != want:
            problem = f"{fields[0]} lines have {want} tab-separated fields, found {len(fields)}"
        else:
            try:
                float(fields[-1])
                if fields[0] in ("HMMF", "HMMR"):
                    int(fields[1])
                if fields[0] in ("FERF", "FERR"):
                    int(fields[2])
            except ValueError:
                problem = "a count field is not a number"
        if problem:
            raise CorpusError(
                path, line_no, problem,
                "pass a priors file written by `xlre align --save-priors` or eflomal-makepriors",
            )
    if line_no == 0:
        raise CorpusError(path, None, "the priors file is empty",
                          "pass a priors file written by `xlre align --save-priors` or "
                          "eflomal-makepriors, or leave out --priors")


class EflomalAligner(WordAligner):
    """eflomal in both directions plus symmetrisation.

    Args:
        symmetrize_method: one of :data:`alignment.symmetrize.SYMMETRIZATIONS`.
        priors: an eflomal priors file to start from (see module docstring).
        n_samplers: independent Gibbs samplers whose counts are combined.
        rel_iterations: iterations relative to eflomal's size-based default.
        null_prior: eflomal's prior on aligning a word to NULL.
        prefix_len: if > 0, words are cut to this many characters for training
            (a cheap stemmer that pools rare inflected forms); links are unchanged.
            4 is the default because it measured best on the EN-FR Hansards gold
            (AER about 0.075 against 0.095 for whole words; scripts/bench_align.py).
        fold_scripts: train on Chinese text with traditional characters folded to
            simplified (module docstring), so corpora in either script pool their
            counts; needs OpenCC only when the text holds Han characters, and without
            it raises :class:`AlignerError` saying what to install (or pass False).

    The default symmetrisation is ``intersect``, the most precise and the best on AER;
    ``grow-diag-final-and`` trades precision for recall.
    """

    name = "eflomal"
    max_tokens = 1023

    def __init__(
        self,
        symmetrize_method: str = "intersect",
        priors: Path | str | None = None,
        n_samplers: int = 3,
        rel_iterations: float = 1.0,
        null_prior: float = 0.2,
        prefix_len: int = 4,
        fold_scripts: bool = True,
    ) -> None:
        if symmetrize_method not in SYMMETRIZATIONS:
            raise SettingError(
                f"unknown symmetrization {symmetrize_method!r}; "
                f"choose one of {', '.join(SYMMETRIZATIONS)}"
            )
        self.symmetrize_method = symmetrize_method
        self.priors = Path(priors) if priors is not None else None
        if self.priors is not None:
            if not self.priors.is_file():
                raise FileNotFoundError(f"{self.priors}: priors file not found")
            validate_priors(self.priors)
        self.n_samplers = n_samplers
        self.rel_iterations = rel_iterations
        self.null_prior = null_prior
        self.prefix_len = prefix_len
        self.fold_scripts = fold_scripts
        # Training text and the last run's files live in a private working directory,
        # so memory stays flat: eflomal reads the text from disk into compact arrays.
        self._workdir = tempfile.TemporaryDirectory(prefix="xlre-eflomal-")
        self._dir = Path(self._workdir.name)
        self._n_extra = 0
        self._last_n = 0
        # save_priors_when_trained: where the next training's priors go, and the
        # background count that writes them (target, job).
        self._priors_target: Path | None = None
        self._background: tuple[Path, ForkedJob[int]] | None = None

    @property
    def needs_whole_corpus(self) -> bool:
        """Without priors eflomal must see all the text at once to learn from it."""
        return self.priors is None

    def training_line(self, tokens: Sequence[str]) -> str:
        """The line eflomal trains on for ``tokens``: the module's training forms."""
        return training_line(tokens, self.fold_scripts)

    def line_function(self) -> Callable[[Sequence[str]], str]:
        """:meth:`training_line` as a function that pickles (for worker processes)."""
        return partial(training_line, fold_scripts=self.fold_scripts)

    def add_training_text(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> int:
        """Add tokenised parallel text used for training only; returns pairs added."""
        self._check_lengths(src, tgt)
        return self.add_training_rows(
            (len(s), len(t), self.training_line(s), self.training_line(t))
            for s, t in zip(src, tgt, strict=True)
            if 0 < len(s) <= self.max_tokens and 0 < len(t) <= self.max_tokens
        )

    def add_training_rows(self, rows: Iterable[TrainingRow]) -> int:
        """:meth:`add_training_text` for pairs given as ``(n_src, n_tgt, src_line,
        tgt_line)`` (:meth:`align_lines_pharaoh`'s rows); a pair with an empty side or
        over :attr:`max_tokens` is left out, as there. Returns pairs added."""
        added = 0
        with open(self._dir / "extra.src", "a", encoding="utf-8") as fs, open(
            self._dir / "extra.tgt", "a", encoding="utf-8"
        ) as ft:
            for n_src, n_tgt, src_line, tgt_line in rows:
                if 0 < n_src <= self.max_tokens and 0 < n_tgt <= self.max_tokens:
                    fs.write(src_line)
                    ft.write(tgt_line)
                    added += 1
        self._n_extra += added
        return added

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Links]:
        self._check_lengths(src, tgt)
        return list(self.align_stream(zip(src, tgt, strict=True)))

    def align_stream(self, pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> Iterator[Links]:
        """Align a stream of (source tokens, target tokens) pairs with flat memory.

        The stream is consumed (written to disk) and aligned by this call, since
        eflomal learns from all of it; the returned iterator then reads the links back
        one pair at a time. Pairs over :attr:`max_tokens` raise :class:`AlignerError`.
        """
        n, empty = self._train(pairs)
        return self._read_links(n, empty) if n else iter(())

    def align_stream_pharaoh(
        self, pairs: Iterable[tuple[Sequence[str], Sequence[str]]]
    ) -> Iterator[tuple[str, str, int]]:
        """:meth:`align_stream` as text: each pair's (Pharaoh links, scores, link count),
        as ``Links.to_pharaoh()``, ``Links.scores_text()`` and ``len`` would give them,
        without building a record for every link (:func:`alignment.pipeline.align_corpus`
        writes these)."""
        n, empty = self._train(pairs)
        return self._read_pharaoh(n, empty) if n else iter(())

    def align_lines_pharaoh(self, rows: Iterable[TrainingRow]) -> Iterator[tuple[str, str, int]]:
        """:meth:`align_stream_pharaoh` for pairs given as ``(n_src, n_tgt, src_line,
        tgt_line)``, the lines being :meth:`training_line` of each side's ``n`` tokens
        (:func:`alignment.parallel_tokenize.lines_stream` makes them on worker
        processes)."""
        n, empty = self._train_rows(rows)
        return self._read_pharaoh(n, empty) if n else iter(())

    def _train(self, pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> tuple[int, set[int]]:
        return self._train_rows(
            (len(s), len(t), self.training_line(s), self.training_line(t)) for s, t in pairs
        )

    def _train_rows(self, rows: Iterable[TrainingRow]) -> tuple[int, set[int]]:
        """Write the rows' training text, run eflomal on it (plus the extra text);
        returns the number of pairs and the indices of those with an empty side."""
        n = 0
        empty: set[int] = set()
        self._finish_background()  # it reads the files this training rewrites
        src_path, tgt_path = self._dir / "text.src", self._dir / "text.tgt"
        with open(src_path, "w", encoding="utf-8") as fs, open(tgt_path, "w", encoding="utf-8") as ft:
            for n_src, n_tgt, src_line, tgt_line in rows:
                if n_src > self.max_tokens or n_tgt > self.max_tokens:
                    raise AlignerError(
                        f"pair {n} has {n_src} source and {n_tgt} target tokens; eflomal "
                        f"aligns at most {self.max_tokens} tokens a side"
                    )
                if not n_src or not n_tgt:
                    empty.add(n)
                fs.write(src_line)
                ft.write(tgt_line)
                n += 1
            for name, fh in (("extra.src", fs), ("extra.tgt", ft)):
                extra = self._dir / name
                if extra.exists():
                    with open(extra, encoding="utf-8") as ex:
                        shutil.copyfileobj(ex, fh)
        self._last_n = n
        if n:
            self._run(src_path, tgt_path, n + self._n_extra)
            if self._priors_target is not None:
                self._start_background_priors(self._priors_target)
        return n, empty

    def _link_lines(self, n: int) -> Iterator[tuple[str, str]]:
        """The forward and reverse link lines eflomal wrote for the first ``n`` pairs, in
        step: what every reader of its output starts from."""
        with open(self._dir / "fwd", encoding="utf-8") as ff, open(self._dir / "rev", encoding="utf-8") as fr:
            for _ in range(n):
                yield ff.readline(), fr.readline()

    def _read_links(self, n: int, empty: set[int]) -> Iterator[Links]:
        for k, (f_line, r_line) in enumerate(self._link_lines(n)):
            if k in empty:
                yield Links()
                continue
            f, r = _parse_links(f_line), _parse_links(r_line)
            links = symmetrize(f, r, self.symmetrize_method)
            scores = {p: (0.5 * (p in f) + 0.5 * (p in r)) for p in links}
            yield Links.from_pairs(links, scores)

    def _read_pharaoh(self, n: int, empty: set[int]) -> Iterator[tuple[str, str, int]]:
        method = self.symmetrize_method
        keys: dict[str, tuple[int, int]] = {}  # a link's sort key, parsed once per run
        for k, (f_line, r_line) in enumerate(self._link_lines(n)):
            if k in empty:
                yield "", "", 0
                continue
            if method == "intersect":
                # eflomal writes each link as "%d-%d", so equal text is an equal link:
                # intersect the words and parse only the links kept, to sort them.
                both = set(f_line.split()).intersection(r_line.split())
                for link in both:
                    if link not in keys:
                        keys[link] = _link_key(link)
                links = sorted(both, key=keys.__getitem__)
                yield " ".join(links), " ".join([_SHARE_TEXT[2]] * len(links)), len(links)
                continue
            f, r = _parse_links(f_line), _parse_links(r_line)
            pairs = sorted(symmetrize(f, r, method))
            # A link's score is the share of the two directions that found it.
            yield (" ".join([f"{i}-{j}" for i, j in pairs]),
                   " ".join([_SHARE_TEXT[(p in f) + (p in r)] for p in pairs]), len(pairs))

    def _run(self, src_path: Path, tgt_path: Path, n_lines: int) -> None:
        eflomal = _import_eflomal()
        aligner = eflomal.Aligner(
            n_samplers=self.n_samplers,
            rel_iterations=self.rel_iterations,
            null_prior=self.null_prior,
            source_prefix_len=self.prefix_len,
            target_prefix_len=self.prefix_len,
        )
        logger.info(
            "eflomal: training on %d pairs (%d extra), %d samplers",
            n_lines, self._n_extra, self.n_samplers,
        )
        fwd_path, rev_path = self._dir / "fwd", self._dir / "rev"
        if self.priors is None and n_lines >= PARALLEL_PREPARE_FROM and _two_sides_at_once(eflomal):
            self._align_sides_at_once(eflomal, aligner, src_path, tgt_path, fwd_path, rev_path)
            self._check_output(fwd_path, rev_path, n_lines)
            return
        with open(src_path, encoding="utf-8") as fs, open(tgt_path, encoding="utf-8") as ft:
            # eflomal reads the priors line by line; give it them by the rules of
            # alignment.textfile (gzip, BOM, CRLF), as validate_priors read them.
            priors_fh = (f"{text}\n" for _, text in strict_lines(self.priors)) if self.priors else None
            try:
                aligner.align(
                    fs, ft,
                    links_filename_fwd=str(fwd_path), links_filename_rev=str(rev_path),
                    priors_input=priors_fh, quiet=True,
                )
            except Exception as err:
                raise AlignerError(f"eflomal failed: {err}") from err
            finally:
                if priors_fh is not None:
                    priors_fh.close()  # the generator, and the file it holds open
        self._check_output(fwd_path, rev_path, n_lines)

    @staticmethod
    def _check_output(fwd_path: Path, rev_path: Path, n_lines: int) -> None:
        for path in (fwd_path, rev_path):
            got = count_lines(path)
            if got != n_lines:
                raise AlignerError(f"eflomal wrote {got} link lines for {n_lines} sentence pairs")

    def _align_sides_at_once(
        self, eflomal: Any, aligner: Any, src_path: Path, tgt_path: Path, fwd_path: Path, rev_path: Path
    ) -> None:
        """What eflomal's ``Aligner.align`` does without priors, its two input files
        (each side's vocabulary and word ids, eflomal's ``to_eflomal_text_file``) written
        by two processes at once instead of one after the other: on all of Tatoeba that
        serial step took 0.8-1.4 s, with one core idle. The files, and so the links, are
        those eflomal writes (a test compares them byte for byte)."""
        src_bin, tgt_bin = self._dir / "input.src", self._dir / "input.tgt"
        try:
            with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
                sides = [
                    pool.submit(_eflomal_input, str(src_path), str(src_bin), aligner.source_prefix_len,
                                aligner.source_suffix_len),
                    pool.submit(_eflomal_input, str(tgt_path), str(tgt_bin), aligner.target_prefix_len,
                                aligner.target_suffix_len),
                ]
                n_src, n_tgt = (side.result() for side in sides)
            if n_src != n_tgt:
                raise AlignerError(f"eflomal's input has {n_src} source and {n_tgt} target sentences")
            eflomal.align(
                str(src_bin), str(tgt_bin),
                links_filename_fwd=str(fwd_path), links_filename_rev=str(rev_path),
                statistics_filename=None, scores_filename_fwd=None, scores_filename_rev=None,
                priors_filename=None, model=aligner.model, score_model=aligner.score_model,
                n_iterations=aligner.n_iterations, n_samplers=aligner.n_samplers, quiet=True,
                rel_iterations=aligner.rel_iterations, null_prior=aligner.null_prior, use_gdb=False,
            )
        except AlignerError:
            raise
        except Exception as err:
            raise AlignerError(f"eflomal failed: {err}") from err
        finally:
            for path in (src_bin, tgt_bin):
                path.unlink(missing_ok=True)

    def save_priors(self, path: Path | str, workers: int | None = None) -> None:
        """Write priors learnt by the last alignment (its text plus extra text), counted
        on ``workers`` processes (``None``: all cores); the file is the one eflomal's own
        ``calculate_priors`` and ``write_priors`` would write (:mod:`alignment.aligners.priors`).
        Where :meth:`save_priors_when_trained` asked for ``path``, this waits for the
        background count instead (its errors are raised here)."""
        if not self._last_n:
            raise AlignerError("no alignment has been run yet: align a corpus before saving priors")
        path = Path(path)
        if self._background is not None and self._background[0] == path:
            entries = self._finish_background()
            _tmp_name(path).replace(path)
            logger.info("eflomal: wrote priors (%d lexical entries) to %s", entries, path)
            return
        from alignment.parallel_tokenize import resolve_workers

        entries = _write_priors(self._training_files(), self._last_n + self._n_extra,
                                resolve_workers(workers), str(_tmp_name(path)))
        _tmp_name(path).replace(path)
        logger.info("eflomal: wrote priors (%d lexical entries) to %s", entries, path)

    def save_priors_when_trained(self, path: Path | str | None) -> None:
        """Count the priors of each later training in a background process, started as
        soon as eflomal has written its links, so the count runs while the links are read
        and symmetrised (one core on the main process); :meth:`save_priors` with the same
        ``path`` then waits for it and puts the file in place. ``None`` stops it.

        Where no worker can be forked (not Linux, a daemonic process, one core), the
        priors are counted by :meth:`save_priors` as before."""
        self._priors_target = Path(path) if path is not None else None

    def _training_files(self) -> tuple[str, str, str, str]:
        return (str(self._dir / "text.src"), str(self._dir / "text.tgt"), str(self._dir / "fwd"),
                str(self._dir / "rev"))

    def _start_background_priors(self, path: Path) -> None:
        from alignment.parallel_tokenize import can_fork_helpers

        if not can_fork_helpers():
            return
        job = ForkedJob(_write_priors, self._training_files(), self._last_n + self._n_extra, 1,
                        str(_tmp_name(path)))
        self._background = (path, job)

    def _finish_background(self) -> int:
        """Wait for the background priors count, if one runs; its lexical entries (0: none ran)."""
        if self._background is None:
            return 0
        path, job = self._background
        self._background = None
        try:
            return int(job.result())
        except HelperDied as died:
            raise AlignerError(f"the priors count's helper process stopped with exit code {died.exitcode} "
                               f"before it wrote {path} (out of memory?). Fix: free memory and run "
                               "again (an annotation run: --resume)") from None
        finally:
            job.close()

    def stop_background_priors(self) -> None:
        """Stop a background priors count nobody will wait for (the run failed after it
        started), and remove its partial file; nothing happens when none runs."""
        if self._background is None:
            return
        path, job = self._background
        self._background = None
        job.close()
        _tmp_name(path).unlink(missing_ok=True)

    def directional_links(self) -> Iterator[tuple[set[tuple[int, int]], set[tuple[int, int]]]]:
        """(forward, reverse) links of each pair of the last alignment, before symmetrising."""
        for f_line, r_line in self._link_lines(self._last_n):
            yield _parse_links(f_line), _parse_links(r_line)


def _tmp_name(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _write_priors(files: tuple[str, str, str, str], n_lines: int, workers: int, out: str) -> int:
    """Count the priors of ``files`` (training text, forward and reverse links) and
    write them to ``out``; the number of lexical entries."""
    from alignment.aligners.priors import count_priors, write_priors

    src, tgt, fwd, rev = map(Path, files)
    priors = count_priors(src, tgt, fwd, rev, n_lines, workers)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        write_priors(fh, priors)
    return len(priors[0])


#: From this many lines, eflomal's two input files are written by two processes at once.
PARALLEL_PREPARE_FROM = 20_000


def _two_sides_at_once(eflomal: Any) -> bool:
    """Whether :meth:`EflomalAligner._align_sides_at_once` can run here: forked helpers
    (:func:`can_fork_helpers`), and an eflomal with the two functions its
    ``Aligner.align`` is made of."""
    from alignment.parallel_tokenize import can_fork_helpers

    return (can_fork_helpers()
            and callable(getattr(eflomal, "to_eflomal_text_file", None))
            and callable(getattr(eflomal, "align", None)))


def _eflomal_input(text_path: str, out_path: str, prefix_len: int, suffix_len: int) -> int:
    """Write one side's eflomal input file from its training text; the sentence count."""
    from eflomal import to_eflomal_text_file

    with open(text_path, encoding="utf-8") as fh, open(out_path, "wb") as out:
        _, n_sents, _ = to_eflomal_text_file(fh, out, prefix_len, suffix_len)
    return int(n_sents)


#: One pair for :meth:`EflomalAligner.align_lines_pharaoh`: source and target token
#: counts and their training lines.
TrainingRow = tuple[int, int, str, str]


def training_line(tokens: Sequence[str], fold_scripts: bool = True) -> str:
    """The line eflomal trains on for ``tokens``: lowercased (casefolded), one space
    between tokens, and with ``fold_scripts`` the scripts folded
    (:func:`alignment.script.fold_script`); ends in a newline."""
    line = " ".join(tokens).casefold()
    if line.count(" ") != len(tokens) - 1 or _OTHER_SPACE.search(line):
        # A token holding a space of another kind (U+00A0 ...) would read as two:
        # drop its inner spaces so the token indices stay those of ``tokens``.
        line = " ".join("".join(t.split()) or "_" for t in tokens).casefold()
    if fold_scripts:
        try:
            line = fold_script(line)
        except ScriptFoldError as err:
            raise AlignerError(str(err)) from None
    return line + "\n"


#: Whitespace other than " ", which eflomal would also split a line at.
_OTHER_SPACE = re.compile(r"[^\S ]")


def _parse_links(line: str) -> set[tuple[int, int]]:
    numbers = map(int, line.replace("-", " ").split())
    return set(zip(numbers, numbers, strict=True))


def _link_key(link: str) -> tuple[int, int]:
    i, _, j = link.partition("-")
    return int(i), int(j)


# ``Links.scores_text`` of a link found by 0, 1 or 2 of the directions.
_SHARE_TEXT = ("0.0000", "0.5000", "1.0000")


def eflomal_parts(aligner: WordAligner) -> list[EflomalAligner]:
    """The eflomal aligners inside ``aligner``: itself, or the eflomal half of a combined
    aligner (so callers can set :attr:`EflomalAligner.fold_scripts` and the like)."""
    parts = [aligner, getattr(aligner, "eflomal", None)]
    return [p for p in parts if isinstance(p, EflomalAligner)]
