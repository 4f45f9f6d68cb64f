"""Line-based text inputs, read by one set of rules for every reader.

Every xlre reader of a line-based file (parallel corpora, KB files, marked gold,
extraction input, extracted triples, eflomal priors, gold links and gold triples)
takes its lines from :func:`read_lines`, so a damaged file means the same thing
everywhere:

- ``*.gz`` is gunzipped. A stream that ends early, or is not gzip or corrupt, stops
  with the file and the line where it broke: a cut-short file is never taken as whole.
- A byte-order mark at the very start is dropped.
- A line ends at ``\\n``; one ``\\r`` before it is dropped, so CRLF files read like LF
  files. A ``\\r`` elsewhere stays in the line (it never splits a record).
- A line with invalid UTF-8 or a NUL byte is a bad line (reasons ``invalid_utf8`` and
  ``nul_byte``): it comes back as an error for the reader to raise, or to count and skip
  where the reader takes ``--skip-bad``.
- Lines of any length are read whole; nothing is truncated.
- An empty file has no lines; whether that is an error is the reader's rule.
- A missing path or a directory is refused before anything is read.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from alignment.errors import CorpusError

BOM = b"\xef\xbb\xbf"


def open_binary(path: Path | str) -> BinaryIO:
    """Open ``path`` for reading bytes, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file. Fix: check the path")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a file. Fix: give the file's path")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _gzip_error(name: Path | str, line_no: int | None, err: Exception,
                error: type[CorpusError]) -> CorpusError:
    if isinstance(err, EOFError):
        return error(name, line_no, "the gzip stream ends early: the file was cut short",
                     "download or compress the file again (the lines before this one were "
                     "read; the rest are missing)", reason="truncated_gzip")
    return error(name, line_no, f"the gzip data is damaged ({err})",
                 "download or compress the file again, or drop the .gz suffix if the file is "
                 "not compressed", reason="bad_gzip")


_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def chunks(path: Path | str, size: int = 1 << 20, error: type[CorpusError] = CorpusError) -> Iterator[bytes]:
    """The bytes of ``path`` (gunzipped for ``*.gz``) in blocks; a broken gzip stream raises."""
    with open_binary(path) as fh:
        try:
            yield from iter(lambda: fh.read(size), b"")
        except _GZIP_ERRORS as err:
            raise _gzip_error(path, None, err, error) from None


def count_lines(path: Path | str) -> int:
    """Number of lines in ``path`` (a last line without a newline counts)."""
    n = 0
    last = b"\n"
    for chunk in chunks(path):
        n += chunk.count(b"\n")
        last = chunk[-1:]
    return n + (0 if last == b"\n" else 1)


def raw_lines(
    fh: BinaryIO, name: Path | str, error: type[CorpusError] = CorpusError
) -> Iterator[tuple[int, bytes]]:
    """``(line_no, bytes)`` of a binary stream, numbered from 1, without line ends.

    A broken gzip stream raises ``error`` at the first line it could not give.
    """
    line_no = 0
    try:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if raw.endswith(b"\n"):
                raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
            yield line_no, raw
    except _GZIP_ERRORS as err:
        raise _gzip_error(name, line_no + 1, err, error) from None


def decode_line(
    raw: bytes, name: Path | str, line_no: int, error: type[CorpusError] = CorpusError,
    skip_hint: bool = True,
) -> str | CorpusError:
    """The text of one raw line, or the error that makes it a bad line (not raised)."""
    skip = ", or pass --skip-bad to skip such lines" if skip_hint else ""
    nul = raw.find(b"\x00")
    if nul >= 0:
        return error(name, line_no, f"a NUL byte at byte {nul}: the file is binary or damaged",
                     f"remove the NUL bytes (e.g. `tr -d '\\000'`){skip}", reason="nul_byte")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return error(name, line_no, f"invalid UTF-8 at byte {err.start} ({raw[err.start:err.start + 4]!r})",
                     f"re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`){skip}",
                     reason="invalid_utf8")


def read_lines(
    path: Path | str, error: type[CorpusError] = CorpusError, skip_hint: bool = True,
    stream: BinaryIO | None = None,
) -> Iterator[tuple[int, str | CorpusError]]:
    """``(line_no, text)`` of a text file by the module's rules; a bad line's text is the
    :class:`~alignment.errors.CorpusError` (of class ``error``) that says why.

    ``stream`` reads an open binary stream (standard input) named ``path`` instead.
    ``skip_hint``: the reader takes ``--skip-bad``, so a bad line's fix mentions it.
    """
    if stream is not None:
        for line_no, raw in raw_lines(stream, path, error):
            yield line_no, decode_line(raw, path, line_no, error, skip_hint)
        return
    with open_binary(path) as fh:
        for line_no, raw in raw_lines(fh, path, error):
            yield line_no, decode_line(raw, path, line_no, error, skip_hint)


def strict_lines(path: Path | str, error: type[CorpusError] = CorpusError) -> Iterator[tuple[int, str]]:
    """:func:`read_lines` for readers with no ``--skip-bad``: a bad line raises."""
    for line_no, text in read_lines(path, error, skip_hint=False):
        if isinstance(text, CorpusError):
            raise text
        yield line_no, text
