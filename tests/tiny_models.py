"""Tiny XLM-R-shaped encoders built on the fly, so tests and benchmarks need no download.

:func:`build_tiny_xlmr` trains a SentencePiece-style Unigram tokenizer with the
``tokenizers`` library on a small corpus, wraps it as an ``XLMRobertaTokenizerFast``
(``<s>``/``</s>`` around the sequence, as XLM-R does), builds a randomly initialised
``XLMRobertaModel`` (``torch.manual_seed(0)``) and saves both with ``save_pretrained``,
so ``AutoTokenizer.from_pretrained(out_dir)`` and ``AutoModel.from_pretrained(out_dir)``
load them offline. :func:`build_xlmr_base_shaped` does the same at XLM-R base size, for
speed benchmarks only (its weights are random: links are meaningless, costs are real).

The tokenizer is built the way transformers 5 rebuilds an XLM-R tokenizer when it loads
one (Unigram model, ``<unk>`` at id 3, whitespace split then ``▁`` metaspace, no
normalizer), so the saved tokenizer and the reloaded one tokenize identically; the
builder checks that before returning.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Special tokens in XLM-R's id order for the first four (<s>=0, <pad>=1, </s>=2,
# <unk>=3); transformers 5 hard-codes unk_id=3 for XLM-R tokenizers.
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

# Hand-written English/French sentence pairs (written for this project).
EN_FR_PAIRS: tuple[tuple[str, str], ...] = (
    ("The cat sleeps on the old sofa .", "Le chat dort sur le vieux canapé ."),
    ("The dog eats a big bone in the garden .", "Le chien mange un gros os dans le jardin ."),
    ("My sister lives in Paris with her husband .", "Ma sœur habite à Paris avec son mari ."),
    ("We will visit the museum tomorrow morning .", "Nous visiterons le musée demain matin ."),
    ("The children are playing in the park .", "Les enfants jouent dans le parc ."),
    ("He reads a newspaper every day .", "Il lit un journal tous les jours ."),
    ("The train to Lyon leaves at noon .", "Le train pour Lyon part à midi ."),
    ("She bought three red apples at the market .", "Elle a acheté trois pommes rouges au marché ."),
    ("The weather is very cold this winter .", "Il fait très froid cet hiver ."),
    ("Our teacher speaks English and French .", "Notre professeur parle anglais et français ."),
    ("The small bird sings in the tree .", "Le petit oiseau chante dans l'arbre ."),
    ("I drink coffee without sugar .", "Je bois du café sans sucre ."),
    ("The president of France lives in Paris .", "Le président de la France habite à Paris ."),
    ("Berlin is the capital of Germany .", "Berlin est la capitale de l'Allemagne ."),
    ("The river flows through the old city .", "La rivière traverse la vieille ville ."),
    ("They opened a new bakery near the station .", "Ils ont ouvert une nouvelle boulangerie près de la gare ."),
    ("The company was founded in 1998 by two engineers .", "L'entreprise a été fondée en 1998 par deux ingénieurs ."),
    ("The horse runs across the green field .", "Le cheval court à travers le champ vert ."),
    ("Marie Curie was born in Warsaw .", "Marie Curie est née à Varsovie ."),
    ("The book is on the table in the kitchen .", "Le livre est sur la table de la cuisine ."),
    ("Where is the nearest hospital ?", "Où est l'hôpital le plus proche ?"),
    ("We ate fish and bread for dinner .", "Nous avons mangé du poisson et du pain au dîner ."),
    ("The wolf follows the sheep in the mountains .", "Le loup suit les moutons dans les montagnes ."),
    ("His father works at a bank in Geneva .", "Son père travaille dans une banque à Genève ."),
    ("The museum is closed on Mondays .", "Le musée est fermé le lundi ."),
    ("The students wrote a long letter to the mayor .", "Les étudiants ont écrit une longue lettre au maire ."),
    ("I lost my keys yesterday evening .", "J'ai perdu mes clés hier soir ."),
    ("The film starts at eight o'clock .", "Le film commence à huit heures ."),
    ("Victor Hugo wrote many famous novels .", "Victor Hugo a écrit de nombreux romans célèbres ."),
    ("The sea is calm and blue today .", "La mer est calme et bleue aujourd'hui ."),
    ("My brother plays the guitar in a band .", "Mon frère joue de la guitare dans un groupe ."),
    ("The shop sells shoes and old clothes .", "Le magasin vend des chaussures et de vieux vêtements ."),
    ("The plane landed in Montreal after midnight .", "L'avion a atterri à Montréal après minuit ."),
    ("Please close the window , it is raining .", "Ferme la fenêtre , s'il te plaît , il pleut ."),
    ("The old man feeds the birds every morning .", "Le vieil homme nourrit les oiseaux chaque matin ."),
    ("Google is a company based in California .", "Google est une entreprise basée en Californie ."),
    ("The doctor gave her some medicine .", "Le médecin lui a donné des médicaments ."),
    ("We need more time to finish the project .", "Nous avons besoin de plus de temps pour finir le projet ."),
    ("The cat and the dog are friends .", "Le chat et le chien sont amis ."),
    ("The small fish swims in the lake .", "Le petit poisson nage dans le lac ."),
)


def default_corpus() -> list[str]:
    """The built-in corpus: both sides of :data:`EN_FR_PAIRS`, one sentence a line."""
    return [s for pair in EN_FR_PAIRS for s in pair]


def _train_tokenizer(corpus: Iterable[str], vocab_size: int, model_max_length: int):
    """Train a Unigram tokenizer on ``corpus`` and wrap it as ``XLMRobertaTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizerFast

    backend = Tokenizer(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace("▁", prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace("▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        unk_token="<unk>",
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    for i, tok in enumerate(SPECIAL_TOKENS):
        if backend.token_to_id(tok) != i:
            raise RuntimeError(f"special token {tok} got id {backend.token_to_id(tok)}, expected {i}")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return XLMRobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=model_max_length,
    )


def _build(
    out_dir: Path,
    corpus: list[str] | None,
    *,
    max_positions: int,
    vocab_size: int,
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
) -> Path:
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    if max_positions < 4:
        raise ValueError(f"max_positions must be at least 4, got {max_positions}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = list(corpus) if corpus is not None else default_corpus()
    if not texts:
        raise ValueError("corpus is empty: give at least one sentence, or None for the built-in one")
    # XLM-R positions start at pad_token_id + 1 = 2, so 2 positions are never used.
    tokenizer = _train_tokenizer(texts, vocab_size, model_max_length=max_positions - 2)
    tokenizer.save_pretrained(out_dir)

    probe = texts[:50]
    reloaded = AutoTokenizer.from_pretrained(out_dir)
    for text in probe:
        if reloaded.tokenize(text) != tokenizer.tokenize(text):
            raise RuntimeError(
                f"the saved tokenizer in {out_dir} does not reload identically on {text!r}"
            )

    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = XLMRobertaModel(config)
    model.eval()
    model.save_pretrained(out_dir)
    return out_dir


def build_tiny_xlmr(
    out_dir: Path,
    corpus: list[str] | None = None,
    max_positions: int = 130,
    vocab_size: int = 500,
) -> Path:
    """Build a tiny random XLM-R (hidden 32, 4 layers, 2 heads) into ``out_dir``.

    ``corpus`` trains the tokenizer (default: :func:`default_corpus`); ``max_positions``
    is ``max_position_embeddings`` (the model takes ``max_positions - 2`` tokens,
    special tokens included, and the tokenizer's ``model_max_length`` says so).
    Returns ``out_dir``, loadable offline with the ``Auto*`` classes.
    """
    return _build(
        out_dir, corpus, max_positions=max_positions, vocab_size=vocab_size,
        hidden=32, layers=4, heads=2, intermediate=64,
    )


def build_xlmr_base_shaped(
    out_dir: Path, corpus: list[str] | None = None, vocab_size: int = 8000
) -> Path:
    """Build a random encoder of XLM-R base's shape (768 hidden, 12 layers, 12 heads).

    For speed benchmarks only. Pass a large ``corpus`` (a few thousand sentences of the
    benchmark's text) so the tokenizer splits words into realistic subword counts; on the
    small built-in corpus the vocabulary stays far below ``vocab_size``.
    """
    return _build(
        out_dir, corpus, max_positions=514, vocab_size=vocab_size,
        hidden=768, layers=12, heads=12, intermediate=3072,
    )


def with_max_positions(model_dir: Path, out_dir: Path, max_positions: int) -> Path:
    """Copy the model in ``model_dir`` with its position table cut to ``max_positions``.

    All other weights are shared, so on inputs short enough for both, the copy computes
    exactly what the original does; on longer inputs it must embed in windows.
    """
    from transformers import AutoTokenizer, XLMRobertaModel

    src = XLMRobertaModel.from_pretrained(model_dir)
    if max_positions > src.config.max_position_embeddings:
        raise ValueError(
            f"max_positions {max_positions} exceeds the original's "
            f"{src.config.max_position_embeddings}"
        )
    config = src.config.__class__.from_dict(
        {**src.config.to_dict(), "max_position_embeddings": max_positions}
    )
    short = XLMRobertaModel(config)
    state = src.state_dict()
    key = "embeddings.position_embeddings.weight"
    state[key] = state[key][:max_positions].clone()
    short.load_state_dict({k: v for k, v in state.items() if k in short.state_dict()})
    short.eval()
    out_dir = Path(out_dir)
    short.save_pretrained(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.model_max_length = max_positions - 2
    tokenizer.save_pretrained(out_dir)
    return out_dir
