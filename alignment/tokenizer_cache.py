"""spaCy's rule-based tokenizers, built once per machine and kept on disk.

Building spaCy's French tokenizer takes about 5 s, every process, because importing
``spacy.lang.fr`` compiles its ``token_match`` regex (1.45 MB of alternatives, 4.6 s in
Python's regex compiler). Python keeps no compiled regex between processes, but the
compiler's output, the pattern's code (a list of integers), is what :mod:`re` itself
hands to ``_sre.compile``. So the first build of a language's tokenizer stores its rules
and the code of its five regexes here; later builds make the same
``spacy.tokenizer.Tokenizer`` from them in milliseconds, without importing the language.

The store is keyed by the spaCy and Python versions, the regex engine's ``MAGIC`` and the
language and its config, so an upgrade of any of them builds afresh. A store that cannot
be read is logged and built again; a directory that cannot be written is logged, and
the tokenizer built the slow way is used as it is. Only spaCy's own rule-based tokenizer
is stored (segmenters such as jieba are built as before), and only when each regex is a
compiled pattern's method, as spaCy's languages make them.

The store lives in ``$XLRE_CACHE_DIR/spacy-tokenizers`` (default:
``$XDG_CACHE_HOME/xlre``, else ``~/.cache/xlre``).
"""

from __future__ import annotations

import array
import hashlib
import json
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Bumped when what is stored changes.
FORMAT = 1
#: The tokenizer's regex attributes and the method of the compiled pattern each one is.
REGEXES = {
    "prefix_search": "search",
    "suffix_search": "search",
    "infix_finditer": "finditer",
    "token_match": "match",
    "url_match": "match",
}


def cache_dir() -> Path:
    """Where stored tokenizers live (module docstring)."""
    root = os.environ.get("XLRE_CACHE_DIR")
    if root:
        return Path(root) / "spacy-tokenizers"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "xlre" / "spacy-tokenizers"


def _key(lang: str, config: dict[str, Any]) -> str:
    import _sre

    from alignment.spacy_import import import_spacy

    spacy = import_spacy()

    parts = [FORMAT, spacy.__version__, sys.version, _sre.MAGIC, lang, config]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _pattern_of(fn: Any, method: str) -> re.Pattern[str] | None:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, re.Pattern) and getattr(fn, "__name__", None) == method:
        return owner
    return None


def _code_record(pattern: re.Pattern[str]) -> dict[str, Any]:
    """What ``re`` compiles ``pattern`` to, as :func:`_rebuild_pattern` takes it.

    ``pattern.flags`` holds the flags it was compiled with plus its inline ones, so
    compiling again with them gives the very same code."""
    from re import _compiler, _parser  # type: ignore[attr-defined]

    parsed = _parser.parse(pattern.pattern, pattern.flags)
    code = _compiler._code(parsed, pattern.flags)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, i in parsed.state.groupdict.items():
        indexgroup[i] = name
    return {
        "pattern": pattern.pattern,
        "flags": pattern.flags | parsed.state.flags,
        "code": array.array("I", code).tobytes(),
        "groups": parsed.state.groups - 1,
        "groupindex": dict(parsed.state.groupdict),
        "indexgroup": indexgroup,
    }


def _rebuild_pattern(rec: dict[str, Any]) -> re.Pattern[str]:
    import _sre

    code = array.array("I")
    code.frombytes(rec["code"])
    return _sre.compile(rec["pattern"], rec["flags"], code.tolist(), rec["groups"],
                        rec["groupindex"], tuple(rec["indexgroup"]))


def load(lang: str, config: dict[str, Any]) -> Any | None:
    """The stored tokenizer for ``lang`` and ``config``, or ``None`` when none is."""
    path = cache_dir() / f"{lang}-{_key(lang, config)}.msgpack"
    if not path.exists():
        return None
    import srsly
    from spacy.tokenizer import Tokenizer
    from spacy.vocab import Vocab

    try:
        data = srsly.msgpack_loads(path.read_bytes())
        regexes = {name: (getattr(_rebuild_pattern(rec), REGEXES[name]) if rec else None)
                   for name, rec in data["regexes"].items()}
        return Tokenizer(Vocab(), rules=data["rules"], faster_heuristics=data["faster_heuristics"],
                         **regexes)
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("%s: cannot read the stored %s tokenizer (%s); building it again",
                       path, lang, err)
        return None


def store(lang: str, config: dict[str, Any], tokenizer: Any) -> None:
    """Keep ``tokenizer`` (spaCy's rule-based one, as ``spacy.blank`` made it) for later
    builds; does nothing for any other kind."""
    from spacy.tokenizer import Tokenizer

    if type(tokenizer) is not Tokenizer:
        return
    regexes: dict[str, dict[str, Any] | None] = {}
    for name, method in REGEXES.items():
        fn = getattr(tokenizer, name)
        if fn is None:
            regexes[name] = None
            continue
        pattern = _pattern_of(fn, method)
        if pattern is None:
            logger.debug("%s tokenizer: %s is not a compiled pattern's %s; not stored",
                         lang, name, method)
            return
        regexes[name] = _code_record(pattern)
    import srsly

    data = {"format": FORMAT, "rules": dict(sorted(tokenizer.rules.items())),
            "faster_heuristics": tokenizer.faster_heuristics, "regexes": regexes}
    path = cache_dir() / f"{lang}-{_key(lang, config)}.msgpack"
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(srsly.msgpack_dumps(data))
        tmp.replace(path)
    except OSError as err:
        logger.warning("cannot store the %s tokenizer in %s (%s): every run builds it "
                       "again (set XLRE_CACHE_DIR to a writable directory)", lang, path.parent, err)
        tmp.unlink(missing_ok=True)
        return
    logger.info("stored the %s tokenizer in %s", lang, path)
