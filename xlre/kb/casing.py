"""How a corpus writes its words: the evidence that a capitalised alias is a common word.

A KB holds many entities whose alias is an everyday word (``Found``, a film; ``People``,
a TV series; ``Police``, a band). Capitalised at a sentence start, in a headline or
inside a longer name the KB does not know ("Baton Rouge Police Department"), such a
word matches the alias, and with one candidate it would be linked. The corpus itself
says which words these are: a common noun is written in lowercase most of the time,
a name almost never.

:func:`count_casing` counts, for each word of interest (the single-word alias keys of
a gazetteer), how often the source side writes it all-lowercase and how often
capitalised on its own: not first in its sentence, not in a headline (a sentence most
of whose words are capitalised), and with neither neighbouring word capitalised.
:meth:`CaseStats.is_common` is then "lowercase at least twice, and more often than
capitalised on its own": ``people`` and ``police`` are common words of the EN-ZH news
corpus, ``China`` and ``Phoenix`` are not.

Counted once per annotation run over the whole source side and stored in the run
directory (``casing.tsv``: word, lowercase count, capitalised count), so a resumed run
and every worker judge by the same counts.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alignment.errors import CorpusError

CASING_FILE = "casing.tsv"
#: A run of letters, with inner apostrophes (``People's`` counts as ``people``).
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
#: A sentence is a headline when at least this share of its words (of 4+ letters) are
#: capitalised.
HEADLINE_SHARE = 0.6


def _is_title(word: str) -> bool:
    return word[0].isupper() and not word.isupper()


@dataclass
class CaseStats:
    """Lowercase and capitalised-on-its-own counts per casefolded word."""

    lower: Counter[str] = field(default_factory=Counter)
    capitalised: Counter[str] = field(default_factory=Counter)

    def add(self, text: str, words: frozenset[str] | set[str]) -> None:
        """Count the words of one sentence that are in ``words`` (casefolded)."""
        found = _WORD.findall(text)
        keys = [w.casefold().split("'")[0].split("’")[0] for w in found]
        long_words = [w for w in found if len(w) >= 4]
        headline = bool(long_words) and sum(map(_is_title, long_words)) >= HEADLINE_SHARE * len(long_words)
        for i, (word, key) in enumerate(zip(found, keys, strict=True)):
            if key not in words:
                continue
            if word.islower():
                self.lower[key] += 1
            elif (_is_title(word) and i > 0 and not headline
                  and not _is_title(found[i - 1])
                  and not (i + 1 < len(found) and _is_title(found[i + 1]))):
                self.capitalised[key] += 1

    def is_common(self, word: str) -> bool:
        """``word`` is written in lowercase at least twice, and more often than capitalised
        on its own (module docstring)."""
        key = word.casefold()
        low = self.lower.get(key, 0)
        return low >= 2 and low > self.capitalised.get(key, 0)

    def write(self, path: Path) -> None:
        """Write ``word<TAB>lower<TAB>capitalised`` lines, atomically (a temporary name of
        this process's own: machines sharing a run directory may write it at once)."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for key in sorted(set(self.lower) | set(self.capitalised)):
                fh.write(f"{key}\t{self.lower.get(key, 0)}\t{self.capitalised.get(key, 0)}\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> CaseStats:
        stats = cls()
        with open(path, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                    raise CorpusError(path, line_no, "expected WORD<TAB>LOWER<TAB>CAPITALISED counts",
                                      "delete the file; the run counts it again")
                if int(parts[1]):
                    stats.lower[parts[0]] = int(parts[1])
                if int(parts[2]):
                    stats.capitalised[parts[0]] = int(parts[2])
        return stats


def count_casing(texts: Iterable[str], words: frozenset[str] | set[str]) -> CaseStats:
    """:class:`CaseStats` of ``words`` over ``texts`` (module docstring)."""
    stats = CaseStats()
    if not words:
        return stats
    for text in texts:
        stats.add(text, words)
    return stats
