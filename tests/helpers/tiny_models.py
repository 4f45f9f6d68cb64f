"""Tiny XLM-R-shaped encoders built on the fly, so tests and benchmarks need no download.

Thin wrappers over :mod:`xlre.modeling.tiny` with a built-in hand-written corpus.
"""

from __future__ import annotations

from pathlib import Path

from xlre.modeling.tiny import BASE, MICRO, build_encoder, with_max_positions

__all__ = ["EN_FR_PAIRS", "TINY_CLI_SHAPE", "build_tiny_xlmr", "build_xlmr_base_shaped", "with_max_positions"]

#: ``xlre init-model --tiny`` options for the smallest encoder the CLI tests train.
TINY_CLI_SHAPE: tuple[str, ...] = ("--hidden", "32", "--layers", "1", "--heads", "2",
                                   "--vocab-size", "300", "--max-positions", "130")

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


def build_tiny_xlmr(
    out_dir: Path,
    corpus: list[str] | None = None,
    max_positions: int = 130,
    vocab_size: int = 500,
) -> Path:
    """Build a tiny random XLM-R (hidden 32, 4 layers, 2 heads) into ``out_dir``."""
    from dataclasses import replace

    shape = replace(MICRO, max_positions=max_positions, vocab_size=vocab_size)
    return build_encoder(out_dir, corpus if corpus is not None else default_corpus(), shape)


def build_xlmr_base_shaped(
    out_dir: Path, corpus: list[str] | None = None, vocab_size: int = 8000
) -> Path:
    """Build a random encoder of XLM-R base's shape, for speed benchmarks only."""
    from dataclasses import replace

    shape = replace(BASE, vocab_size=vocab_size)
    return build_encoder(out_dir, corpus if corpus is not None else default_corpus(), shape)
