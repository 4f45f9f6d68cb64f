"""Chinese script folding: traditional and simplified characters as one.

Chinese text, KB aliases and corpora mix the two scripts (Wikidata's ``zh``,
``zh-hans``, ``zh-hant``, ``zh-cn`` and ``zh-tw`` labels; Tatoeba's Chinese is mostly
traditional). :func:`fold_script` maps every traditional Han character to its
simplified form, so ``臺灣`` and ``台湾`` give the same key. It is a *key*, never the
text that is kept: matching, anchors and aligner training compare folded forms, while
offsets and the text written out stay those of the original.

The fold maps **character by character, each character to exactly one character**, so
``len(fold_script(s)) == len(s)`` and every offset into the folded text is an offset
into the original. The table is OpenCC's ``t2s`` conversion of each Han character on
its own (no phrase rules, which could change lengths or depend on the neighbours),
followed to a fixed point so folding twice changes nothing; a character whose
conversion is not exactly one character is left unchanged. Characters outside the Han
blocks (Latin, digits, punctuation, kana, hangul) are never changed.

OpenCC (``pip install 'xlre[cjk]'``) is loaded only when a text holds a Han character;
without it :class:`ScriptFoldError` says what to install.

Segmentation: jieba's dictionary is simplified, so it cuts traditional text badly
(``臺灣是一個島`` -> ``臺 / 灣是 / 一個島``). :class:`FoldingTokenizer` segments the folded
text and gives back the original characters at the same offsets (``臺灣 / 是 / 一個 /
島``); :func:`make_tokenizer` returns one for Chinese under the ``fold`` policy.

Policies (:data:`SCRIPT_POLICIES`), as ``AnnotateConfig.zh_script`` records them:
``fold`` (the default) folds Chinese text, ``keep`` compares the scripts as written.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from functools import cache

from alignment.errors import SettingError, UserError
from alignment.records import TokenizedText
from alignment.tokenize import Tokenizer

SCRIPT_POLICIES: tuple[str, ...] = ("fold", "keep")

#: The Unicode blocks whose characters are folded: CJK radicals, CJK Unified
#: Ideographs and their extensions A to H, and the compatibility ideographs.
_HAN_RANGES: tuple[tuple[int, int], ...] = (
    (0x2E80, 0x2FDF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x323AF),
)
_HAN = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _HAN_RANGES) + "]")


class ScriptFoldError(UserError, ImportError):
    """Folding needs OpenCC, which is not installed; the message says how to get it."""


def is_chinese(lang: str) -> bool:
    """True for a Chinese language tag: ``zh`` and its variants (``zh-hant``, ``zh_TW``)."""
    return re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0] in ("zh", "cmn")


def has_han(text: str) -> bool:
    """True when ``text`` holds a character that :func:`fold_script` may change."""
    return _HAN.search(text) is not None


@cache
def fold_table() -> dict[int, str]:
    """Code point -> its simplified character, for every Han character that changes."""
    try:
        import opencc
    except ImportError as err:
        raise ScriptFoldError(
            "folding traditional and simplified Chinese needs OpenCC: install it with "
            "`pip install 'xlre[cjk]'` (or `pip install opencc`), or keep the scripts "
            f"apart with --zh-script keep ({err})"
        ) from err
    converter = opencc.OpenCC("t2s")  # opencc>=1.1 adds the config's .json suffix
    chars = [chr(c) for a, b in _HAN_RANGES for c in range(a, b + 1)]
    # One character per line: OpenCC's phrases never cross a newline, so each
    # character is converted on its own.
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - a converter that ate newlines
        converted = [converter.convert(c) for c in chars]
    table = {c: out for c, out in zip(chars, converted, strict=True) if len(out) == 1 and out != c}
    for c in list(table):  # follow chains (A -> B -> C) so that folding is idempotent
        seen = {c}
        out = table[c]
        while out in table and out not in seen:
            seen.add(out)
            out = table[out]
        table[c] = out
    return {ord(c): out for c, out in table.items() if out != c}


def fold_script(text: str) -> str:
    """``text`` with traditional Han characters folded to simplified; same length."""
    if not has_han(text):
        return text
    folded = text.translate(fold_table())
    assert len(folded) == len(text), "the fold maps each character to one character"
    return folded


def fold_tokenized(tok: TokenizedText) -> TokenizedText:
    """``tok`` with its text and tokens folded; the offsets are those of ``tok``."""
    if not has_han(tok.text):
        return tok
    return TokenizedText(fold_script(tok.text), tuple(fold_script(t) for t in tok.tokens),
                         tok.char_starts, tok.char_ends)


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`SCRIPT_POLICIES`, else a ValueError."""
    if policy not in SCRIPT_POLICIES:
        raise SettingError(f"unknown Chinese script policy {policy!r}; choose "
                         f"{' or '.join(SCRIPT_POLICIES)}")
    return policy


class FoldingTokenizer(Tokenizer):
    """A :class:`~alignment.tokenize.Tokenizer` that segments the script-folded text.

    The tokens and text it returns are the original's, at the offsets found in the
    folded text (the fold keeps every offset), so only *where* the text is cut changes.
    """

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[TokenizedText]:
        originals: deque[str] = deque()

        def folded() -> Iterator[str]:
            for text in texts:
                originals.append(text)
                yield fold_script(text)

        for tok in super().pipe(folded(), batch_size):
            text = originals.popleft()
            if tok.text is text:  # nothing was folded
                yield tok
                continue
            yield TokenizedText(text, tuple(text[s:e] for s, e in zip(tok.char_starts, tok.char_ends, strict=True)),
                                tok.char_starts, tok.char_ends)


def make_tokenizer(lang: str, pretokenized: bool = False, zh_script: str = "fold") -> Tokenizer:
    """The tokenizer for ``lang``: a :class:`FoldingTokenizer` for raw Chinese text under
    the ``fold`` policy, else a plain :class:`~alignment.tokenize.Tokenizer`."""
    check_policy(zh_script)
    if zh_script == "fold" and not pretokenized and is_chinese(lang):
        return FoldingTokenizer(lang, pretokenized)
    return Tokenizer(lang, pretokenized)
