"""alignment: read parallel corpora, tokenize them and word-align them.

This package knows parallel text, tokens, word links and span projection; it knows
nothing of knowledge bases, relations or models.
"""

from alignment.aligners import build_aligner, get_aligner
from alignment.aligners.base import AlignerError, WordAligner
from alignment.corpus import BadLine, ParallelCorpus, SkipReport
from alignment.errors import CorpusError
from alignment.metrics import AlignmentScores, alignment_error_rate
from alignment.pharaoh import GoldAlignment, read_pharaoh
from alignment.pipeline import AlignSummary, align_corpus
from alignment.records import Link, Links, SentencePair, Span, TokenizedText
from alignment.symmetrize import SYMMETRIZATIONS, symmetrize
from alignment.tokenize import Tokenizer, TokenizerError

__all__ = [
    "SYMMETRIZATIONS",
    "AlignSummary",
    "AlignerError",
    "AlignmentScores",
    "BadLine",
    "CorpusError",
    "GoldAlignment",
    "Link",
    "Links",
    "ParallelCorpus",
    "SentencePair",
    "SkipReport",
    "Span",
    "TokenizedText",
    "Tokenizer",
    "TokenizerError",
    "WordAligner",
    "align_corpus",
    "alignment_error_rate",
    "build_aligner",
    "get_aligner",
    "read_pharaoh",
    "symmetrize",
]
__version__ = "0.1.0"
