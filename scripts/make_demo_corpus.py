"""Generate the synthetic EN-FR demo corpus and its knowledge base (corpora/demo-en-fr).

Everything here is written by this project: a small world of real countries and cities
(with their real Wikidata ids) and invented people and organisations, a KB of facts about
that world, and English-French sentence pairs built from hand-written templates.

Output (under ``--out``):

* ``kb/entities.jsonl``, ``kb/relations.jsonl``, ``kb/triples.tsv``: the KB (DESIGN.md);
* ``parallel.tsv``: ``id<TAB>en<TAB>fr`` pairs for distant supervision: sentences that
  express one or more KB facts, sentences that mention KB entities with no KB fact
  between them (NA), and sentences with one entity or none;
* ``heldout.tsv`` and ``heldout-gold.jsonl``: pairs built from other templates, with the
  KB triples each sentence expresses, one gold line per sentence per language.

Shared aliases: "Keller" names two people, "Florence" a person and the city, "Helix" two
companies (SHARED_ALIASES). About 4% of the pairs write one in a sentence where exactly one
candidate has a KB fact with another entity of the sentence, so xlre's linker resolves it
(``resolved_by_kb``); about 1% write one where it cannot, in a sentence that states no fact,
so the linker drops the mention. No other sentence uses a shared alias.

Guarantees, verified by :func:`self_check` on every run: every mention is an exact KB
alias of its entity in that language and no other alias occurs in the sentence; only the
aliases of SHARED_ALIASES name several entities, and each shared-alias mention is resolved
or dropped as planned by the linker's rule (simulated); for every pair of entities the
linker keeps, the KB facts between them are exactly the facts the sentence expresses (so
distant labels are clean, and NA sentences have no KB fact); no sentence repeats in either
language. The output is the same bytes for the same seed. ``--check-with-linker`` also runs
xlre's own tokenizer and linker over the output (:func:`check_with_linker`); without it the
script needs only the standard library.

Usage: python scripts/make_demo_corpus.py --out corpora/demo-en-fr [--pairs 3000]
       [--heldout 200] [--seed 13] [--check-with-linker]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------- aliases


@dataclass(frozen=True, slots=True)
class Alias:
    """One name of an entity in one language, with what the grammar needs to know."""

    text: str
    the: bool = False  # English: takes "the" (the United Kingdom, the Halvorsen Institute)
    fem: bool = False  # French: feminine (la France) rather than masculine (le Japon)
    plural: bool = False  # French: plural (les États-Unis)
    article: bool = False  # French: takes a definite article (countries, institutions)
    in_text: bool = True  # False: a KB-only alias, never written into a sentence


def alias(spec: str, article: bool = False) -> Alias:
    """Parse ``"text|flags"``: t = English "the", f = feminine, p = plural,
    a = French article, k = KB-only."""
    text, _, flags = spec.partition("|")
    return Alias(text, the="t" in flags, fem="f" in flags, plural="p" in flags,
                 article=article or "a" in flags, in_text="k" not in flags)


# --------------------------------------------------------------------------- the world

# Countries: (Wikidata id, English aliases, French aliases, capital id).
COUNTRIES: list[tuple[str, list[str], list[str], str]] = [
    ("Q142", ["France", "French Republic|tk"], ["France|f", "République française|fk"], "Q90"),
    ("Q183", ["Germany", "Federal Republic of Germany|tk"], ["Allemagne|f"], "Q64"),
    ("Q145", ["United Kingdom|t", "UK|t", "Britain"], ["Royaume-Uni", "Grande-Bretagne|f"], "Q84"),
    ("Q38", ["Italy"], ["Italie|f"], "Q220"),
    ("Q29", ["Spain"], ["Espagne|f"], "Q2807"),
    ("Q30", ["United States|t", "USA|t", "America"], ["États-Unis|p", "Amérique|f"], "Q61"),
    ("Q17", ["Japan"], ["Japon"], "Q1490"),
    ("Q16", ["Canada"], ["Canada"], "Q1930"),
    ("Q31", ["Belgium"], ["Belgique|f"], "Q239"),
    ("Q39", ["Switzerland"], ["Suisse|f"], "Q70"),
    ("Q55", ["Netherlands|t", "Holland"], ["Pays-Bas|p", "Hollande|f"], "Q727"),
    ("Q45", ["Portugal"], ["Portugal"], "Q597"),
    ("Q40", ["Austria"], ["Autriche|f"], "Q1741"),
    ("Q36", ["Poland"], ["Pologne|f"], "Q270"),
    ("Q34", ["Sweden"], ["Suède|f"], "Q1754"),
    ("Q27", ["Ireland", "Republic of Ireland|t"], ["Irlande|f"], "Q1761"),
    ("Q41", ["Greece"], ["Grèce|f"], "Q1524"),
    ("Q155", ["Brazil"], ["Brésil"], "Q2844"),
    ("Q96", ["Mexico"], ["Mexique"], "Q1489"),
    ("Q1028", ["Morocco"], ["Maroc"], "Q3551"),
]

# Cities: (Wikidata id, country id, English aliases, French aliases or None = the same).
CITIES: list[tuple[str, str, list[str], list[str] | None]] = [
    ("Q90", "Q142", ["Paris"], None),
    ("Q456", "Q142", ["Lyon", "Lyons"], ["Lyon"]),
    ("Q23482", "Q142", ["Marseille", "Marseilles"], ["Marseille"]),
    ("Q7880", "Q142", ["Toulouse"], None),
    ("Q1479", "Q142", ["Bordeaux"], None),
    ("Q648", "Q142", ["Lille"], None),
    ("Q64", "Q183", ["Berlin"], None),
    ("Q1726", "Q183", ["Munich"], ["Munich"]),
    ("Q1055", "Q183", ["Hamburg"], ["Hambourg"]),
    ("Q1794", "Q183", ["Frankfurt", "Frankfurt am Main"], ["Francfort"]),
    ("Q365", "Q183", ["Cologne"], ["Cologne"]),
    ("Q84", "Q145", ["London"], ["Londres"]),
    ("Q18125", "Q145", ["Manchester"], None),
    ("Q23436", "Q145", ["Edinburgh"], ["Édimbourg"]),
    ("Q220", "Q38", ["Rome"], None),
    ("Q490", "Q38", ["Milan"], None),
    ("Q2634", "Q38", ["Naples"], None),
    ("Q495", "Q38", ["Turin"], None),
    ("Q641", "Q38", ["Venice"], ["Venise"]),
    ("Q2807", "Q29", ["Madrid"], None),
    ("Q1492", "Q29", ["Barcelona"], ["Barcelone"]),
    ("Q8717", "Q29", ["Seville", "Sevilla"], ["Séville"]),
    ("Q61", "Q30", ["Washington", "Washington, D.C.|k"], ["Washington"]),
    ("Q60", "Q30", ["New York City", "New York", "NYC"], ["New York"]),
    ("Q100", "Q30", ["Boston"], None),
    ("Q1297", "Q30", ["Chicago"], None),
    ("Q62", "Q30", ["San Francisco"], None),
    ("Q1490", "Q17", ["Tokyo"], None),
    ("Q35765", "Q17", ["Osaka"], None),
    ("Q34600", "Q17", ["Kyoto"], None),
    ("Q1930", "Q16", ["Ottawa"], None),
    ("Q340", "Q16", ["Montreal", "Montréal"], ["Montréal"]),
    ("Q172", "Q16", ["Toronto"], None),
    ("Q239", "Q31", ["Brussels"], ["Bruxelles"]),
    ("Q12892", "Q31", ["Antwerp"], ["Anvers"]),
    ("Q70", "Q39", ["Bern", "Berne"], ["Berne"]),
    ("Q71", "Q39", ["Geneva"], ["Genève"]),
    ("Q72", "Q39", ["Zurich", "Zürich"], ["Zurich"]),
    ("Q727", "Q55", ["Amsterdam"], None),
    ("Q34370", "Q55", ["Rotterdam"], None),
    ("Q597", "Q45", ["Lisbon"], ["Lisbonne"]),
    ("Q36433", "Q45", ["Porto", "Oporto"], ["Porto"]),
    ("Q1741", "Q40", ["Vienna"], ["Vienne"]),
    ("Q270", "Q36", ["Warsaw"], ["Varsovie"]),
    ("Q31487", "Q36", ["Kraków", "Krakow"], ["Cracovie"]),
    ("Q1754", "Q34", ["Stockholm"], None),
    ("Q1761", "Q27", ["Dublin"], None),
    ("Q1524", "Q41", ["Athens"], ["Athènes"]),
    ("Q2844", "Q155", ["Brasília", "Brasilia"], ["Brasília"]),
    ("Q174", "Q155", ["São Paulo", "Sao Paulo"], ["São Paulo"]),
    ("Q1489", "Q96", ["Mexico City"], ["Mexico"]),
    ("Q3551", "Q1028", ["Rabat"], None),
    ("Q7903", "Q1028", ["Casablanca"], None),
    # Florence shares its only name with the person Florence Dubois (SHARED_ALIASES).
    ("Q2044", "Q38", ["Florence"], None),
]

# Invented people: (id, "f"/"m", aliases in both languages, English-only spellings,
# place of birth, country of citizenship, employer). Gender stays in the generator
# (French agreement, pronouns); the KB does not store it.
PEOPLE: list[tuple[str, str, list[str], list[str], str, str, str]] = [
    ("X2001", "f", ["Marie Dubois"], [], "Q456", "Q142", "X3001"),
    ("X2002", "m", ["Julien Moreau"], [], "Q1479", "Q142", "X3022"),
    ("X2003", "f", ["Camille Lefèvre"], ["Camille Lefevre"], "Q340", "Q142", "X3015"),
    ("X2004", "m", ["Antoine Girard"], [], "Q7880", "Q142", "X3012"),
    ("X2005", "f", ["Élodie Marchand"], ["Elodie Marchand"], "Q23482", "Q142", "X3003"),
    ("X2006", "m", ["Thomas Rousseau"], [], "Q90", "Q142", "X3004"),
    ("X2007", "f", ["Sophie Bernard"], [], "Q648", "Q142", "X3016"),
    ("X2008", "m", ["Nicolas Fontaine"], [], "Q71", "Q142", "X3007"),
    ("X2009", "f", ["Claire Dufresne"], [], "Q239", "Q142", "X3013"),
    ("X2010", "m", ["Luc Perrin"], [], "Q90", "Q142", "X3001"),
    ("X2011", "f", ["Anna Weber", "Anna K. Weber"], [], "Q1726", "Q183", "X3008"),
    ("X2012", "m", ["Jonas Becker"], [], "Q1055", "Q183", "X3008"),
    ("X2013", "f", ["Lena Fischer"], [], "Q64", "Q183", "X3002"),
    ("X2014", "m", ["Felix Schäfer"], ["Felix Schaefer"], "Q365", "Q183", "X3002"),
    ("X2015", "f", ["Katrin Vogel"], [], "Q1741", "Q183", "X3023"),
    ("X2016", "m", ["Matthias Krüger"], ["Matthias Krueger"], "Q1794", "Q183", "X3021"),
    ("X2017", "f", ["Sabine Lorenz"], [], "Q72", "Q39", "X3013"),
    ("X2018", "m", ["Tobias Brandt"], [], "Q1726", "Q183", "X3025"),
    ("X2019", "f", ["Lucía Fernández"], ["Lucia Fernandez"], "Q2807", "Q29", "X3006"),
    ("X2020", "m", ["Javier Morales"], [], "Q8717", "Q29", "X3020"),
    ("X2021", "f", ["Carmen Ruiz"], [], "Q1492", "Q29", "X3012"),
    ("X2022", "m", ["Diego Navarro"], [], "Q1489", "Q96", "X3019"),
    ("X2023", "f", ["Sofía Castillo"], ["Sofia Castillo"], "Q1492", "Q96", "X3020"),
    ("X2024", "m", ["Andrés Ortega"], ["Andres Ortega"], "Q2807", "Q29", "X3017"),
    ("X2025", "f", ["Giulia Romano"], [], "Q490", "Q38", "X3009"),
    ("X2026", "m", ["Marco Bianchi"], [], "Q495", "Q38", "X3010"),
    ("X2027", "f", ["Chiara Esposito"], [], "Q2634", "Q38", "X3011"),
    ("X2028", "m", ["Lorenzo Gallo"], [], "Q641", "Q38", "X3009"),
    ("X2029", "f", ["Francesca Ricci"], [], "Q220", "Q38", "X3026"),
    ("X2030", "m", ["James Carter", "Jim Carter"], [], "Q84", "Q145", "X3005"),
    ("X2031", "f", ["Emily Clarke"], [], "Q18125", "Q145", "X3021"),
    ("X2032", "m", ["Oliver Bennett"], [], "Q23436", "Q145", "X3010"),
    ("X2033", "f", ["Sarah Mitchell"], [], "Q100", "Q30", "X3024"),
    ("X2034", "m", ["Daniel Brooks"], [], "Q1297", "Q30", "X3011"),
    ("X2035", "f", ["Rachel Kim"], [], "Q172", "Q30", "X3015"),
    ("X2036", "m", ["Michael O'Connor", "Mike O'Connor"], [], "Q1761", "Q27", "X3021"),
    ("X2037", "f", ["Siobhan Murphy"], [], "Q84", "Q27", "X3005"),
    ("X2038", "m", ["Ethan Tremblay"], [], "Q340", "Q16", "X3015"),
    ("X2039", "f", ["Olivia Chen"], [], "Q172", "Q16", "X3018"),
    ("X2040", "m", ["Ryan Walsh"], [], "Q1761", "Q30", "X3024"),
    ("X2041", "f", ["Grace Thompson"], [], "Q1930", "Q16", "X3017"),
    ("X2042", "f", ["Yuki Tanaka"], [], "Q1490", "Q17", "X3018"),
    ("X2043", "m", ["Kenji Watanabe"], [], "Q35765", "Q17", "X3011"),
    ("X2044", "f", ["Aiko Nakamura"], [], "Q62", "Q17", "X3018"),
    ("X2045", "m", ["Takeshi Yamamoto"], [], "Q35765", "Q17", "X3003"),
    ("X2046", "m", ["João Silva"], ["Joao Silva"], "Q174", "Q45", "X3006"),
    ("X2047", "f", ["Inês Costa"], ["Ines Costa"], "Q36433", "Q45", "X3006"),
    ("X2048", "m", ["Rafael Almeida"], [], "Q174", "Q155", "X3019"),
    ("X2049", "f", ["Beatriz Santos"], [], "Q2844", "Q155", "X3025"),
    ("X2050", "m", ["Pieter de Vries"], [], "Q727", "Q55", "X3002"),
    ("X2051", "f", ["Sanne Jansen"], [], "Q34370", "Q55", "X3023"),
    ("X2052", "m", ["Wouter Peeters"], [], "Q34370", "Q31", "X3017"),
    ("X2053", "f", ["Agnieszka Nowak"], [], "Q31487", "Q36", "X3023"),
    ("X2054", "m", ["Piotr Kowalski"], [], "Q270", "Q36", "X3025"),
    ("X2055", "m", ["Erik Lindqvist"], [], "Q72", "Q34", "X3014"),
    ("X2056", "f", ["Astrid Berg"], [], "Q1754", "Q34", "X3026"),
    ("X2057", "m", ["Nikos Papadopoulos", "Nikolaos Papadopoulos"], [], "Q1524", "Q41", "X3014"),
    ("X2058", "f", ["Eleni Georgiou"], [], "Q1524", "Q41", "X3026"),
    ("X2059", "m", ["Youssef Benali"], [], "Q90", "Q1028", "X3022"),
    ("X2060", "f", ["Salma Idrissi"], [], "Q3551", "Q1028", "X3019"),
    ("X2061", "m", ["Lukas Gruber"], [], "Q1741", "Q40", "X3007"),
    ("X2062", "f", ["Nadia Meier"], [], "Q70", "Q39", "X3016"),
    # Shared aliases (SHARED_ALIASES): two people called "Keller", and "Florence", which is
    # also a city. Their facts differ, so the KB can tell them apart in some sentences.
    ("X2063", "f", ["Julia Keller", "Keller"], [], "Q1055", "Q183", "X3002"),
    ("X2064", "m", ["Martin Keller", "Keller"], [], "Q72", "Q39", "X3028"),
    ("X2065", "f", ["Florence Dubois", "Florence"], [], "Q1479", "Q142", "X3027"),
]

# Invented organisations: (id, is an institution (French article), English aliases,
# French aliases, headquarters city, founder). Founders work elsewhere, so a person-
# organisation pair never holds both "employer" and "founded by".
ORGS: list[tuple[str, bool, list[str], list[str], str, str]] = [
    ("X3001", False, ["Kelvix Labs", "Kelvix"], ["Kelvix Labs", "Kelvix"], "Q456", "X2006"),
    ("X3002", False, ["Norvane Energy", "Norvane"], ["Norvane Énergie", "Norvane"], "Q1055", "X2012"),
    ("X3003", False, ["Quillon Systems"], ["Quillon Systems"], "Q90", "X2010"),
    ("X3004", False, ["Aubrac Robotics"], ["Aubrac Robotics"], "Q7880", "X2004"),
    ("X3005", False, ["Brightwater Analytics"], ["Brightwater Analytics"], "Q1761", "X2036"),
    ("X3006", False, ["Castellan Foods"], ["Castellan Foods"], "Q1492", "X2024"),
    ("X3007", False, ["Veridia Pharma"], ["Veridia Pharma"], "Q72", "X2017"),
    ("X3008", False, ["Oberland Maschinenbau"], ["Oberland Maschinenbau"], "Q1726", "X2018"),
    ("X3009", False, ["Teodoro Textiles"], ["Teodoro Textiles"], "Q490", "X2026"),
    ("X3010", True, ["Marlowe University"], ["Université Marlowe|f"], "Q18125", "X2031"),
    ("X3011", True, ["Valdoria Institute of Technology|t", "VIT|t"],
     ["Institut de technologie de Valdoria"], "Q62", "X2035"),
    ("X3012", False, ["Kestrel Aerospace"], ["Kestrel Aerospace"], "Q8717", "X2020"),
    ("X3013", True, ["Sarrasin Bank"], ["Banque Sarrasin|f"], "Q71", "X2008"),
    ("X3014", False, ["Nordlys Shipping"], ["Nordlys Shipping"], "Q1754", "X2056"),
    ("X3015", False, ["Pellucid Software"], ["Pellucid Software"], "Q172", "X2039"),
    ("X3016", False, ["Ferrand Automobiles"], ["Ferrand Automobiles"], "Q1479", "X2002"),
    ("X3017", True, ["Granvelle School of Economics|t"], ["École d'économie Granvelle|f"],
     "Q239", "X2009"),
    ("X3018", False, ["Tsubaki Electronics", "Tsubaki"], ["Tsubaki Électronique", "Tsubaki"],
     "Q35765", "X2043"),
    ("X3019", False, ["Almedina Telecom"], ["Almedina Télécom"], "Q7903", "X2059"),
    ("X3020", False, ["Corvina Media"], ["Corvina Media"], "Q2807", "X2019"),
    ("X3021", False, ["Ironbridge Capital"], ["Ironbridge Capital"], "Q84", "X2030"),
    ("X3022", False, ["Solenne Cosmetics", "Solenne"], ["Solenne Cosmétiques", "Solenne"],
     "Q90", "X2005"),
    ("X3023", True, ["Halvorsen Institute|t"], ["Institut Halvorsen"], "Q727", "X2050"),
    ("X3024", False, ["Cardinal Rail"], ["Cardinal Rail"], "Q1297", "X2034"),
    ("X3025", False, ["Vistula Biotech"], ["Vistula Biotech"], "Q270", "X2053"),
    ("X3026", False, ["Thalassa Maritime"], ["Thalassa Maritime"], "Q1524", "X2057"),
    # Two companies both called "Helix" for short (SHARED_ALIASES).
    ("X3027", False, ["Helix Genomics", "Helix"], ["Helix Génomique", "Helix"], "Q71", "X2061"),
    ("X3028", False, ["Helix Logistics", "Helix"], ["Helix Logistique", "Helix"], "Q34370",
     "X2051"),
]

# Aliases that name more than one entity, in both languages; every other alias names one.
# Sentences use them only where planned ("amb" and "amb_drop" categories, see generate).
SHARED_ALIASES = ("Florence", "Helix", "Keller")

SPOUSES: list[tuple[str, str]] = [
    ("X2001", "X2002"), ("X2011", "X2012"), ("X2019", "X2020"), ("X2025", "X2028"),
    ("X2030", "X2033"), ("X2042", "X2043"), ("X2046", "X2047"), ("X2013", "X2007"),
    ("X2034", "X2040"), ("X2050", "X2051"), ("X2057", "X2058"), ("X2059", "X2060"),
    ("X2038", "X2003"),
]

RELATIONS: list[tuple[str, str, str]] = [
    ("P17", "country", "pays"),
    ("P36", "capital", "capitale"),
    ("P19", "place of birth", "lieu de naissance"),
    ("P27", "country of citizenship", "pays de nationalité"),
    ("P108", "employer", "employeur"),
    ("P159", "headquarters location", "siège"),
    ("P112", "founded by", "fondé par"),
    ("P26", "spouse", "conjoint"),
]
SYMMETRIC = ("P26",)
# Organisations that are not companies (no shares, profits, garages or bank loans).
ACADEMIC = ("X3010", "X3011", "X3017", "X3023")
# Seed of the world's dates (births, foundings, weddings): fixed, so that every sentence
# about a fact gives the same year whatever --seed is, and the KB never depends on --seed.
WORLD_SEED = 2024
KB_TYPE = {"PER": "PER", "ORG": "ORG", "CITY": "LOC", "COUNTRY": "LOC"}


@dataclass(slots=True)
class Entity:
    id: str
    kind: str  # PER, ORG, CITY or COUNTRY (the KB type is KB_TYPE[kind])
    en: tuple[Alias, ...]
    fr: tuple[Alias, ...]
    female: bool = False  # PER, generator-side only
    company: bool = False  # ORG: a company rather than a university or institute


@dataclass
class World:
    """Entities, facts and the indexes the sentence sampler needs."""

    entities: dict[str, Entity] = field(default_factory=dict)
    triples: list[tuple[str, str, str]] = field(default_factory=list)
    by_kind: dict[str, list[str]] = field(default_factory=dict)
    by_rel: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    rels: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    heads: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    tails: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    born_on: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # (y, m, d)
    founded_in: dict[str, int] = field(default_factory=dict)
    married_in: dict[tuple[str, str], int] = field(default_factory=dict)  # both orders
    # language -> casefolded alias -> the entities it names (several: a shared alias)
    owners: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(self, ent: Entity) -> None:
        assert ent.id not in self.entities, ent.id
        self.entities[ent.id] = ent
        self.by_kind.setdefault(ent.kind, []).append(ent.id)
        for lang, names in (("en", ent.en), ("fr", ent.fr)):
            for a in names:
                ids = self.owners.setdefault(lang, {}).setdefault(a.text.casefold(), [])
                if ent.id not in ids:
                    ids.append(ent.id)

    def shared(self, lang: str, text: str) -> bool:
        """True when the ``lang`` alias ``text`` names more than one entity."""
        return len(self.owners[lang][text.casefold()]) > 1

    def connected(self, a: str, b: str) -> bool:
        return (a, b) in self.rels or (b, a) in self.rels

    def link(self, lang: str, mentions: tuple[tuple[str, str], ...]) -> list[str | None]:
        """What xlre's EntityLinker makes of ``mentions`` (alias text, intended id): a
        shared alias goes to the one candidate with a KB fact with a candidate of another
        mention, else to None (dropped)."""
        cands = [self.owners[lang][text.casefold()] for text, _ in mentions]
        out: list[str | None] = []
        for k, mine in enumerate(cands):
            if len(mine) == 1:
                out.append(mine[0])
                continue
            others = {c for j, o in enumerate(cands) if j != k for c in o}
            backed = [c for c in mine if any(self.connected(c, o) for o in others if o != c)]
            out.append(backed[0] if len(backed) == 1 else None)
        return out

    @property
    def focus(self) -> set[str]:
        """Entities with a shared alias."""
        return {i for by in self.owners.values() for ids in by.values() if len(ids) > 1
                for i in ids}

    def fact(self, head: str, rel: str, tail: str) -> None:
        assert head in self.entities and tail in self.entities, (head, rel, tail)
        self.triples.append((head, rel, tail))
        self.by_rel.setdefault(rel, []).append((head, tail))
        self.rels.setdefault((head, tail), []).append(rel)
        self.heads.setdefault((rel, tail), []).append(head)
        self.tails.setdefault((head, rel), []).append(tail)

    def between(self, a: str, b: str) -> list[tuple[str, str, str]]:
        """KB triples linking ``a`` and ``b`` in either direction, sorted."""
        out = [(a, r, b) for r in self.rels.get((a, b), [])]
        out += [(b, r, a) for r in self.rels.get((b, a), [])]
        return sorted(out)


def build_world() -> World:
    w = World()
    for cid, en, fr, _ in COUNTRIES:
        w.add(Entity(cid, "COUNTRY", tuple(alias(s) for s in en),
                     tuple(alias(s, article=True) for s in fr)))
    for cid, _, en, fr in CITIES:
        w.add(Entity(cid, "CITY", tuple(alias(s) for s in en),
                     tuple(alias(s) for s in (fr or en))))
    for pid, gender, names, en_only, *_ in PEOPLE:
        w.add(Entity(pid, "PER", tuple(alias(s) for s in names + en_only),
                     tuple(alias(s) for s in names), female=gender == "f"))
    for oid, inst, en, fr, *_ in ORGS:
        w.add(Entity(oid, "ORG", tuple(alias(s) for s in en),
                     tuple(alias(s, article=inst) for s in fr), company=oid not in ACADEMIC))
    for cid, _, _, capital in COUNTRIES:
        w.fact(cid, "P36", capital)
    for cid, country, _, _ in CITIES:
        w.fact(cid, "P17", country)
    for pid, _, _, _, born, citizen, employer in PEOPLE:
        w.fact(pid, "P19", born)
        w.fact(pid, "P27", citizen)
        w.fact(pid, "P108", employer)
    for oid, _, _, _, hq, founder in ORGS:
        w.fact(oid, "P159", hq)
        w.fact(oid, "P112", founder)
    for a, b in SPOUSES:
        w.fact(a, "P26", b)
        w.fact(b, "P26", a)
    dates = random.Random(WORLD_SEED)
    for pid, *_ in PEOPLE:
        w.born_on[pid] = (dates.randint(1950, 1995), dates.randrange(12), dates.randint(1, 28))
    for oid, *_, founder in ORGS:
        w.founded_in[oid] = dates.randint(min(max(1965, w.born_on[founder][0] + 25), 2015), 2015)
    for a, b in SPOUSES:
        lo = max(w.born_on[a][0], w.born_on[b][0]) + 22
        w.married_in[a, b] = w.married_in[b, a] = dates.randint(lo, 2022)
    return w


# --------------------------------------------------------------------------- templates

SLOT_KIND = {"p": "PER", "q": "PER", "o": "ORG", "o2": "ORG",
             "c": "CITY", "c2": "CITY", "k": "COUNTRY", "k2": "COUNTRY"}
PLACEHOLDER = re.compile(r"\{([a-z0-9+]+)(?:([.#|])([^{}]*))?\}")


@dataclass(frozen=True)
class Template:
    """A sentence pattern in both languages and the KB facts it expresses.

    Placeholders: ``{p}`` an entity slot (p, q: person; o, o2: organisation; c, c2: city;
    k, k2: country); ``{k.the}`` English with "the" where the name takes it; French forms
    ``{x.def}`` (la France), ``{x.de}`` (de la France, d'Airbus), ``{x.a}`` (au Japon),
    ``{x.en}`` (en France, au Japon, aux États-Unis; à Lyon), ``{x.from}`` (une ville de
    France, du Japon), ``{o.chez}`` (chez Kelvix Labs, à l'Université Marlowe);
    ``{p.job}`` a job title; ``{p|né|née}`` by gender (``{p+q|...}``: feminine when both
    are); ``{k#a|ont}`` by French number; ``{year}`` a year after the births and
    foundings the sentence involves; ``{byear}``, ``{bdate}``: p's birth; ``{fyear}``: when
    o was founded; ``{myear}``: when p and q married; other variables (VARS).
    """

    key: str
    category: str  # fact, multi, na, single, none
    en: str
    fr: str
    facts: tuple[tuple[str, str, str], ...] = ()
    companies: bool = False  # organisation slots take companies only
    abroad: bool = False  # person p holds a citizenship other than that of birth

    @property
    def slots(self) -> list[str]:
        """Entity slots, facts' slots first, each after a slot it is linked to."""
        names: list[str] = []
        for text in (self.en, self.fr):
            for m in PLACEHOLDER.finditer(text):
                for name in m.group(1).split("+"):
                    if name in SLOT_KIND and name not in names:
                        names.append(name)
        order: list[str] = []
        if self.facts:
            order += [self.facts[0][0], self.facts[0][2]]
            grew = True
            while grew:
                grew = False
                for h, _, t in self.facts:
                    for a, b in ((h, t), (t, h)):
                        if a in order and b not in order:
                            order.append(b)
                            grew = True
        return order + [n for n in names if n not in order]


def T(key: str, category: str, en: str, fr: str, facts: str = "", companies: bool = False,
      abroad: bool = False) -> Template:
    parsed = tuple(tuple(f.split()) for f in facts.split(";") if f.strip())
    assert all(len(f) == 3 for f in parsed), key
    return Template(key, category, en, fr, parsed, companies, abroad)  # type: ignore[arg-type]


# Templates for parallel.tsv.
TRAIN: list[Template] = [
    # P19 place of birth
    T("p19a", "fact", "{p} was born in {c}.", "{p} est {p|né|née} à {c}.", "p P19 c"),
    T("p19b", "fact", "Born in {c} in {byear}, {p} studied economics before moving abroad.",
      "{p|Né|Née} à {c} en {byear}, {p} a étudié l'économie avant de partir à l'étranger.",
      "p P19 c"),
    T("p19c", "fact", "{p} is a native of {c}.", "{p} est originaire {c.de}.", "p P19 c"),
    T("p19d", "fact", "{c} is the birthplace of {p}.", "{c} est la ville natale {p.de}.",
      "p P19 c"),
    T("p19e", "fact", "{p} grew up in {c}, where {p|he|she} was born in {byear}.",
      "{p} a grandi à {c}, où {p|il|elle} est {p|né|née} en {byear}.", "p P19 c"),
    T("p19f", "fact", "{p} was born in {c} on {bdate}.", "{p} est {p|né|née} à {c} le {bdate}.",
      "p P19 c"),
    # P27 country of citizenship
    T("p27a", "fact", "{p} is a citizen of {k.the}.", "{p} est {p|citoyen|citoyenne} {k.de}.",
      "p P27 k"),
    T("p27b", "fact", "{p} became a citizen of {k.the} in {year}.",
      "{p} est {p|devenu|devenue} {p|citoyen|citoyenne} {k.de} en {year}.", "p P27 k",
      abroad=True),
    T("p27c", "fact", "{k.the} granted citizenship to {p} in {year}.",
      "{k.def} {k#a|ont} accordé la citoyenneté à {p} en {year}.", "p P27 k", abroad=True),
    T("p27d", "fact", "{p}, a national of {k.the}, lives abroad.",
      "{p}, {p|ressortissant|ressortissante} {k.de}, vit à l'étranger.", "p P27 k"),
    T("p27e", "fact", "As a citizen of {k.the}, {p} votes in every national election.",
      "En tant que {p|citoyen|citoyenne} {k.de}, {p} vote à chaque élection nationale.",
      "p P27 k"),
    # P108 employer
    T("p108a", "fact", "{p} works for {o.the}.", "{p} travaille pour {o.def}.", "p P108 o"),
    T("p108b", "fact", "{p} is {p.job} at {o.the}.", "{p} est {p.job} {o.chez}.", "p P108 o"),
    T("p108c", "fact", "{p} joined {o.the} in {year}.", "{p} a rejoint {o.def} en {year}.",
      "p P108 o"),
    T("p108d", "fact", "{p} has been employed by {o.the} since {year}.",
      "{p} est {p|employé|employée} par {o.def} depuis {year}.", "p P108 o"),
    T("p108e", "fact", "{o.the} hired {p} in {year}.", "{o.def} a embauché {p} en {year}.",
      "p P108 o"),
    T("p108f", "fact", "\"We are proud of this result,\" said {p}, {p.job} at {o.the}.",
      "« Nous sommes fiers de ce résultat », a déclaré {p}, {p.job} {o.chez}.", "p P108 o"),
    # P159 headquarters location
    T("p159a", "fact", "{o.the} is headquartered in {c}.", "{o.def} a son siège à {c}.",
      "o P159 c"),
    T("p159b", "fact", "The headquarters of {o.the} are in {c}.",
      "Le siège {o.de} se trouve à {c}.", "o P159 c"),
    T("p159c", "fact", "{o.the}, based in {c}, announced a new strategy in {year}.",
      "{o.def}, dont le siège est à {c}, a annoncé une nouvelle stratégie en {year}.",
      "o P159 c"),
    T("p159d", "fact", "{o.the} moved its head office to {c} in {year}.",
      "{o.def} a transféré son siège social à {c} en {year}.", "o P159 c"),
    T("p159e", "fact", "{c} is home to the headquarters of {o.the}.",
      "{c} accueille le siège {o.de}.", "o P159 c"),
    T("p159f", "fact", "{o.the} ({c}) announced {jobs} new jobs on {weekday}.",
      "{o.def} ({c}) a annoncé {jobs} nouveaux emplois {weekday}.", "o P159 c"),
    # P112 founded by
    T("p112a", "fact", "{o.the} was founded by {p} in {fyear}.",
      "{p} a fondé {o.def} en {fyear}.", "o P112 p"),
    T("p112b", "fact", "{p} founded {o.the} in {fyear}.", "En {fyear}, {p} a fondé {o.def}.",
      "o P112 p"),
    T("p112c", "fact", "{p} is the founder of {o.the}.",
      "{p} est {p|le fondateur|la fondatrice} {o.de}.", "o P112 p"),
    T("p112d", "fact", "{p} set up {o.the} with a small bank loan in {fyear}.",
      "{p} a créé {o.def} en {fyear} grâce à un modeste prêt bancaire.", "o P112 p",
      companies=True),
    T("p112e", "fact", "{o.the} counts {p} as its founder.",
      "{o.def} a pour {p|fondateur|fondatrice} {p}.", "o P112 p"),
    T("p112f", "fact", "{p}, who founded {o.the} in {fyear}, gave a rare interview on {weekday}.",
      "{p}, qui a fondé {o.def} en {fyear}, a accordé un rare entretien {weekday}.", "o P112 p"),
    # P26 spouse
    T("p26a", "fact", "{p} is married to {q}.", "{p} est {p|marié|mariée} à {q}.", "p P26 q"),
    T("p26b", "fact", "{p} married {q} in {myear}.", "{p} a épousé {q} en {myear}.", "p P26 q"),
    T("p26c", "fact", "{p} and {q} have been married since {myear}.",
      "{p} et {q} sont {p+q|mariés|mariées} depuis {myear}.", "p P26 q"),
    T("p26d", "fact", "{p} attended the ceremony with {p|his|her} {q|husband|wife}, {q}.",
      "{p} a assisté à la cérémonie avec {q|son mari|son épouse}, {q}.", "p P26 q"),
    T("p26e", "fact", "The wedding of {p} and {q} took place in {myear}.",
      "Le mariage {p.de} et {q.de} a eu lieu en {myear}.", "p P26 q"),
    # P17 country (of a city)
    T("p17a", "fact", "{c} is a city in {k.the}.", "{c} est une ville {k.from}.", "c P17 k"),
    T("p17b", "fact", "{c} lies in {k.the}.", "{c} se trouve {k.en}.", "c P17 k"),
    T("p17c", "fact", "The conference took place in {c}, {k}.",
      "La conférence a eu lieu à {c}, {k.en}.", "c P17 k"),
    T("p17d", "fact", "{c} is one of the best-known cities in {k.the}.",
      "{c} est l'une des villes les plus connues {k.from}.", "c P17 k"),
    T("p17e", "fact", "Every year, many tourists visit {c} in {k.the}.",
      "Chaque année, de nombreux touristes visitent {c}, {k.en}.", "c P17 k"),
    # P36 capital (a capital is also in its country: P17 is expressed too)
    T("p36a", "fact", "{c} is the capital of {k.the}.", "{c} est la capitale {k.de}.",
      "k P36 c; c P17 k"),
    T("p36b", "fact", "The capital of {k.the} is {c}.", "La capitale {k.de} est {c}.",
      "k P36 c; c P17 k"),
    T("p36c", "fact", "{c}, the capital of {k.the}, hosted the summit in {year}.",
      "{c}, capitale {k.de}, a accueilli le sommet en {year}.", "k P36 c; c P17 k"),
    T("p36d", "fact", "{k.the} has its capital in {c}.", "{k.def} {k#a|ont} pour capitale {c}.",
      "k P36 c; c P17 k"),
    T("p36e", "fact", "Many visitors begin their stay in {k.the} in {c}, the capital.",
      "Beaucoup de visiteurs commencent leur séjour {k.en} par {c}, la capitale.",
      "k P36 c; c P17 k"),
    # several facts, three entities
    T("m1", "multi", "Born in {c}, {p} works for {o.the}.",
      "{p|Né|Née} à {c}, {p} travaille pour {o.def}.", "p P19 c; p P108 o"),
    T("m2", "multi", "{p}, a citizen of {k.the}, founded {o.the} in {fyear}.",
      "{p}, {p|citoyen|citoyenne} {k.de}, a fondé {o.def} en {fyear}.", "o P112 p; p P27 k"),
    T("m3", "multi", "{o.the}, headquartered in {c}, hired {p} in {year}.",
      "{o.def}, dont le siège est à {c}, a embauché {p} en {year}.", "p P108 o; o P159 c"),
    T("m4", "multi", "{p} was born in {c}, {k}.", "{p} est {p|né|née} à {c}, {k.en}.",
      "p P19 c; c P17 k"),
    T("m5", "multi", "{p} and {p|his|her} {q|husband|wife} {q} both work for {o.the}.",
      "{p} et {q|son mari|son épouse} {q} travaillent {p+q|tous deux|toutes deux} pour {o.def}.",
      "p P26 q; p P108 o; q P108 o"),
    T("m6", "multi", "{p}, who was born in {c}, married {q} in {myear}.",
      "{p}, {p|né|née} à {c}, a épousé {q} en {myear}.", "p P26 q; p P19 c"),
    T("m7", "multi", "{c}, the capital of {k.the}, is home to the headquarters of {o.the}.",
      "{c}, capitale {k.de}, accueille le siège {o.de}.", "o P159 c; k P36 c; c P17 k"),
    # two or three entities, no KB fact between any two of them
    T("na1", "na", "{p} visited {c} {season}.", "{p} a visité {c} {season}."),
    T("na2", "na", "{p} gave a lecture in {c} in {year}.",
      "{p} a donné une conférence à {c} en {year}."),
    T("na3", "na", "{p} met {q} in {c} in {year}.", "{p} a rencontré {q} à {c} en {year}."),
    T("na4", "na", "{p} and {q} spoke at the same conference.",
      "{p} et {q} ont pris la parole lors de la même conférence."),
    T("na5", "na", "{p} gave a talk at {o.the} in {year}.",
      "{p} a donné un exposé {o.chez} en {year}."),
    T("na6", "na", "{p} criticised {o.the} in an interview.",
      "{p} a critiqué {o.def} dans un entretien."),
    T("na7", "na", "{p} travelled to {k.the} in {year}.",
      "{p} s'est {p|rendu|rendue} {k.en} en {year}."),
    T("na8", "na", "{p} has never been to {k.the}.", "{p} n'est jamais {p|allé|allée} {k.en}."),
    T("na9", "na", "{o.the} opened a new office in {c} in {year}.",
      "{o.def} a ouvert un nouveau bureau à {c} en {year}."),
    T("na10", "na", "{o.the} is expanding into {k.the}.", "{o.def} se développe {k.en}."),
    T("na11", "na", "{o.the} signed a partnership with {o2.the}.",
      "{o.def} a signé un partenariat avec {o2.def}."),
    T("na12", "na", "Flights between {c} and {c2} were cancelled on {weekday}.",
      "Les vols entre {c} et {c2} ont été annulés {weekday}."),
    T("na13", "na", "Ministers from {k.the} and {k2.the} met in {c} on {weekday}.",
      "Des ministres {k.de} et {k2.de} se sont réunis à {c} {weekday}."),
    T("na14", "na", "{p} moved from {c} to {k.the} in {year}.",
      "{p} a quitté {c} pour s'installer {k.en} en {year}."),
    T("na15", "na", "{p} applied for a job at {o.the} but was turned down.",
      "{p} a postulé {o.chez}, mais sa candidature a été refusée."),
    T("na16", "na", "{p} wrote a biography of {q}.", "{p} a écrit une biographie {q.de}."),
    T("na17", "na", "{o.the} and {o2.the} are competing for the same contract in {k.the}.",
      "{o.def} et {o2.def} se disputent le même contrat {k.en}."),
    # one entity
    T("s1", "single", "{p} declined to comment.", "{p} n'a pas souhaité faire de commentaire."),
    T("s2", "single", "{p} published a new novel in {year}.",
      "{p} a publié un nouveau roman en {year}."),
    T("s3", "single", "{o.the} reported a profit of {millions} million euros in {year}.",
      "{o.def} a annoncé un bénéfice de {millions} millions d'euros en {year}.", companies=True),
    T("s4", "single", "It rained all day in {c} on {weekday}.",
      "Il a plu toute la journée à {c} {weekday}."),
    T("s5", "single", "Shares of {o.the} rose by {pct}% on {weekday}.",
      "L'action {o.de} a progressé de {pct} % {weekday}.", companies=True),
    T("s6", "single", "The weather in {k.the} was mild this week.",
      "Le temps était doux cette semaine {k.en}."),
    # no entity
    T("z1", "none", "The meeting was postponed until {weekday}.",
      "La réunion a été reportée à {weekday}."),
    T("z2", "none", "The report, published in {year}, runs to {pages} pages.",
      "Le rapport, publié en {year}, compte {pages} pages."),
    T("z3", "none", "Prices rose by {pct}% in {year}.", "Les prix ont augmenté de {pct} % en {year}."),
    T("z4", "none", "About {people} people attended the concert on {weekday}.",
      "Environ {people} personnes ont assisté au concert {weekday}."),
    T("z5", "none", "The museum reopened in {year} after two years of work.",
      "Le musée a rouvert en {year} après deux ans de travaux."),
    T("z6", "none", "The committee approved the budget by {votes}.",
      "Le comité a approuvé le budget par {votes}."),
]

# Templates for heldout.tsv: phrasings that parallel.tsv never uses.
HELDOUT: list[Template] = [
    T("h19a", "fact", "{p} came into the world in {c}.", "{p} a vu le jour à {c}.", "p P19 c"),
    T("h19b", "fact", "It was in {c} that {p} was born.", "C'est à {c} que {p} est {p|né|née}.",
      "p P19 c"),
    T("h19c", "fact", "{p} spent {p|his|her} early childhood in {c}, the city of {p|his|her} birth.",
      "{p} a passé sa petite enfance à {c}, sa ville de naissance.", "p P19 c"),
    T("h27a", "fact", "{p} carries a passport issued by {k.the}.",
      "{p} a un passeport délivré par {k.def}.", "p P27 k"),
    T("h27b", "fact", "{p} was naturalised in {k.the} in {year}.",
      "{p} a été {p|naturalisé|naturalisée} {k.en} en {year}.", "p P27 k", abroad=True),
    T("h27c", "fact", "{p} acquired the citizenship of {k.the} after settling there.",
      "{p} a acquis la citoyenneté {k.de} après s'y être {p|installé|installée}.", "p P27 k",
      abroad=True),
    T("h108a", "fact", "{p} is on the staff of {o.the}.", "{p} fait partie du personnel {o.de}.",
      "p P108 o"),
    T("h108b", "fact", "{o.the} employs {p} as {p.job}.", "{o.def} emploie {p} comme {p.job}.",
      "p P108 o"),
    T("h108c", "fact", "{p} earns a living at {o.the}.", "{p} gagne sa vie {o.chez}.", "p P108 o"),
    T("h159a", "fact", "{o.the} keeps its registered office in {c}.",
      "{o.def} a établi son siège social à {c}.", "o P159 c"),
    T("h159b", "fact", "The main offices of {o.the} stand in the centre of {c}.",
      "Les bureaux principaux {o.de} se dressent au centre {c.de}.", "o P159 c"),
    T("h159c", "fact", "{o.the} runs its operations from {c}, where its head office is.",
      "{o.def} pilote ses activités depuis {c}, où se trouve son siège.", "o P159 c"),
    T("h112a", "fact", "It was {p} who established {o.the}.", "C'est {p} qui a créé {o.def}.",
      "o P112 p"),
    T("h112b", "fact", "{o.the} was started by {p} in a garage in {fyear}.",
      "{p} a lancé {o.def} dans un garage en {fyear}.", "o P112 p", companies=True),
    T("h112c", "fact", "{p} is credited with creating {o.the}.",
      "On doit la création {o.de} à {p}.", "o P112 p"),
    T("h26a", "fact", "{p} is the {p|husband|wife} of {q}.",
      "{p} est {p|le mari|l'épouse} {q.de}.", "p P26 q"),
    T("h26b", "fact", "{p} tied the knot with {q} in {myear}.",
      "{p} s'est {p|marié|mariée} avec {q} en {myear}.", "p P26 q"),
    T("h26c", "fact", "{p} lives with {p|his|her} {q|husband|wife}, {q}.",
      "{p} vit avec {q|son mari|son épouse}, {q}.", "p P26 q"),
    T("h17a", "fact", "{c} belongs to {k.the}.", "{c} appartient {k.a}.", "c P17 k"),
    T("h17b", "fact", "The city of {c} is situated in {k.the}.",
      "La ville {c.de} est située {k.en}.", "c P17 k"),
    T("h17c", "fact", "{k.the} counts {c} among its major cities.",
      "{c} figure parmi les grandes villes {k.from}.", "c P17 k"),
    T("h36a", "fact", "{c} has the status of capital of {k.the}.",
      "{c} a le statut de capitale {k.de}.", "k P36 c; c P17 k"),
    T("h36b", "fact", "{k.the} chose {c} as its capital.",
      "{k.def} {k#a|ont} choisi {c} comme capitale.", "k P36 c; c P17 k"),
    T("h36c", "fact", "The capital city of {k.the}, {c}, attracts many visitors.",
      "La capitale {k.de}, {c}, attire de nombreux visiteurs.", "k P36 c; c P17 k"),
    T("hm1", "multi", "{p}, a native of {c}, now works at {o.the}.",
      "{p}, originaire {c.de}, travaille désormais {o.chez}.", "p P19 c; p P108 o"),
    T("hm2", "multi", "{p}, founder of {o.the}, is a citizen of {k.the}.",
      "{p}, {p|fondateur|fondatrice} {o.de}, est {p|citoyen|citoyenne} {k.de}.",
      "o P112 p; p P27 k"),
    T("hm3", "multi", "{o.the} has its head office in {c}, a city in {k.the}.",
      "{o.def} a son siège à {c}, une ville {k.from}.", "o P159 c; c P17 k"),
    T("hn1", "na", "{p} read a book about {c}.", "{p} a lu un livre sur {c}."),
    T("hn2", "na", "{p} interviewed {q} for a documentary.",
      "{p} a interviewé {q} pour un documentaire."),
    T("hn3", "na", "{o.the} sponsored a football match in {c}.",
      "{o.def} a parrainé un match de football à {c}."),
    T("hn4", "na", "{p} dreams of retiring to {k.the}.",
      "{p} rêve de prendre sa retraite {k.en}."),
    T("hn5", "na", "{p} and {q} had lunch together in {c}.",
      "{p} et {q} ont déjeuné ensemble à {c}."),
    T("hs1", "single", "{p} will speak at the festival on {weekday}.",
      "{p} prendra la parole au festival {weekday}."),
    T("hs2", "single", "{c} hosted a marathon in {year}.", "{c} a accueilli un marathon en {year}."),
    T("hz1", "none", "The bridge was closed for {days} days in {year}.",
      "Le pont a été fermé pendant {days} jours en {year}."),
]

# amb: facts stated through a shared alias that the KB resolves; amb_drop: a shared alias
# the KB cannot resolve, in a sentence that states no fact (generate).
TRAIN_MIX = {"fact": 0.52, "multi": 0.07, "na": 0.24, "single": 0.08, "none": 0.04,
             "amb": 0.04, "amb_drop": 0.01}
HELDOUT_MIX = {"fact": 0.68, "multi": 0.12, "na": 0.09, "single": 0.04, "none": 0.02,
               "amb": 0.04, "amb_drop": 0.01}
# How often each relation's templates are drawn among the single-fact sentences.
TRAIN_RELATION_WEIGHTS = {"P19": 17, "P27": 14, "P108": 20, "P159": 12, "P112": 10,
                          "P26": 8, "P17": 11, "P36": 8}

# --------------------------------------------------------------------------- variables

JOBS = [("an engineer", "ingénieur", "ingénieure"), ("a researcher", "chercheur", "chercheuse"),
        ("a data analyst", "analyste de données", "analyste de données"),
        ("a lawyer", "juriste", "juriste"), ("an accountant", "comptable", "comptable"),
        ("a product manager", "chef de produit", "cheffe de produit"),
        ("a project manager", "chef de projet", "cheffe de projet"),
        ("an economist", "économiste", "économiste"), ("a designer", "designer", "designer"),
        ("a sales director", "directeur commercial", "directrice commerciale")]
WEEKDAYS = [("Monday", "lundi"), ("Tuesday", "mardi"), ("Wednesday", "mercredi"),
            ("Thursday", "jeudi"), ("Friday", "vendredi"), ("Saturday", "samedi")]
SEASONS = [("last summer", "l'été dernier"), ("last spring", "au printemps dernier"),
           ("last winter", "l'hiver dernier"), ("in the autumn", "à l'automne")]
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"]


def _number(n: int, group: bool = True) -> tuple[str, str]:
    """English and French spellings of an integer (1,200 / 1 200; years ungrouped)."""
    if not group:
        return str(n), str(n)
    return f"{n:,}", f"{n:,}".replace(",", " ")


def _date(year: int, month: int, day: int) -> tuple[str, str]:
    return (f"{day} {MONTHS_EN[month]} {year}",
            f"{'1er' if day == 1 else day} {MONTHS_FR[month]} {year}")


def _pct(rng: random.Random) -> tuple[str, str]:
    text = f"{rng.randint(5, 95) / 10:.1f}"
    return text, text.replace(".", ",")


def _votes(rng: random.Random) -> tuple[str, str]:
    yes = rng.randint(12, 30)
    no = rng.randint(1, yes - 1)
    return f"{yes} votes to {no}", f"{yes} voix contre {no}"


VARS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "weekday": lambda r: r.choice(WEEKDAYS),
    "season": lambda r: r.choice(SEASONS),
    "jobs": lambda r: _number(r.choice([r.randint(20, 400), r.randint(1000, 2500)])),
    "millions": lambda r: _number(r.randint(2, 95)),
    "pages": lambda r: _number(r.randint(40, 600)),
    "people": lambda r: _number(r.randint(150, 9000)),
    "days": lambda r: _number(r.randint(2, 30)),
    "pct": _pct,
    "votes": _votes,
}

# --------------------------------------------------------------------------- rendering

FR_VOWELS = "AEIOUÉÈÊÀÂÎÔÛaeiouéèêàâîôû"


def fr_form(a: Alias, form: str) -> str:
    """``a`` in French with the article or preposition ``form`` asks for (see Template)."""
    t, vowel = a.text, a.text[0] in FR_VOWELS
    if form == "":
        return t
    if form == "def":
        if not a.article:
            return t
        return ("les " if a.plural else "l'" if vowel else "la " if a.fem else "le ") + t
    if form in ("de", "from"):
        if not a.article:
            return ("d'" if vowel else "de ") + t
        if a.plural:
            return "des " + t
        if form == "from":  # une ville de France, d'Allemagne, du Japon
            return ("d'" if vowel else "de " if a.fem else "du ") + t
        return ("de l'" if vowel else "de la " if a.fem else "du ") + t
    if form in ("a", "chez"):
        if not a.article:
            return ("chez " if form == "chez" else "à ") + t
        return ("aux " if a.plural else "à l'" if vowel else "à la " if a.fem else "au ") + t
    if form == "en":  # countries: en France, au Japon, aux États-Unis; cities: à Lyon
        if not a.article:
            return "à " + t
        return ("aux " if a.plural else "en " if a.fem or vowel else "au ") + t
    raise ValueError(f"unknown French form {form!r}")


def en_form(a: Alias, form: str) -> str:
    if form == "":
        return a.text
    if form == "the":
        return ("the " if a.the else "") + a.text
    raise ValueError(f"unknown English form {form!r}")


@dataclass(frozen=True)
class Rendered:
    text: str
    mentions: tuple[tuple[str, str], ...]  # (alias text, entity id), in writing order


def render(template: str, lang: str, ents: dict[str, Entity], names: dict[str, Alias],
           values: dict[str, tuple[str, str]]) -> Rendered:
    """Fill ``template`` for ``lang`` with the chosen entities, aliases and variables."""
    mentions: list[tuple[str, str]] = []
    li = 0 if lang == "en" else 1

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if op == "|":  # gender choice
            masc, fem = arg.split("|")
            return fem if all(ents[n].female for n in name.split("+")) else masc
        if op == "#":  # French number choice
            sg, pl = arg.split("|")
            return pl if names[name].plural else sg
        if name not in SLOT_KIND:
            assert op is None, m.group(0)
            return values[name][li]
        if arg == "job":
            en, masc, fem = JOBS[int(values["job"][0])]
            return en if lang == "en" else fem if ents[name].female else masc
        a = names[name]
        mentions.append((a.text, ents[name].id))
        return en_form(a, arg or "") if lang == "en" else fr_form(a, arg or "")

    text = PLACEHOLDER.sub(sub, template)
    if text[0].isalpha():
        text = text[0].upper() + text[1:]
    return Rendered(text, tuple(mentions))


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Record:
    id: str
    en: Rendered
    fr: Rendered
    triples: tuple[tuple[str, str, str], ...]  # the KB facts the sentence expresses
    template: str
    # "" (no shared alias), "resolved" (the linker resolves every shared alias by KB
    # evidence) or "dropped" (the linker drops every shared-alias mention)
    ambiguous: str = ""
    dropped: tuple[str, ...] = ()  # entities whose mention the linker drops, sorted


def expressed(t: Template, assign: dict[str, str]) -> set[tuple[str, str, str]]:
    out = set()
    for h, r, tl in t.facts:
        out.add((assign[h], r, assign[tl]))
        if r in SYMMETRIC:
            out.add((assign[tl], r, assign[h]))
    return out


def consistent(t: Template, assign: dict[str, str], world: World) -> bool:
    """All facts of ``t`` hold, and no two entities share a KB fact ``t`` does not express."""
    ids = list(assign.values())
    if len(set(ids)) != len(ids):
        return False
    if t.companies and not all(world.entities[i].company for i in ids
                               if world.entities[i].kind == "ORG"):
        return False
    if t.abroad:
        born_in = world.tails[(world.tails[(assign["p"], "P19")][0], "P17")][0]
        if born_in == world.tails[(assign["p"], "P27")][0]:
            return False
    said = expressed(t, assign)
    if any(r not in world.rels.get((h, tl), []) for h, r, tl in said):
        return False
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if any(tr not in said for tr in world.between(a, b)):
                return False
    return True


def fill(t: Template, world: World, rng: random.Random, tries: int = 400,
         focus: set[str] | None = None) -> dict[str, str] | None:
    """Entity ids for the slots of ``t`` that satisfy :func:`consistent`, or None. With
    ``focus``, the draw favours assignments that include an entity of ``focus``."""
    slots = t.slots
    for _ in range(tries):
        assign: dict[str, str] = {}
        if t.facts:
            h, r, tl = t.facts[0]
            pairs = world.by_rel[r]
            if focus:
                pairs = [pr for pr in pairs if focus & set(pr)] or pairs
            assign[h], assign[tl] = rng.choice(pairs)
        for slot in slots:
            if slot in assign:
                continue
            cands: list[str] | None = None
            for h, r, tl in t.facts:
                if h == slot and tl in assign:
                    found = world.heads.get((r, assign[tl]), [])
                elif tl == slot and h in assign:
                    found = world.tails.get((assign[h], r), [])
                else:
                    continue
                cands = found if cands is None else [c for c in cands if c in found]
            pool = world.by_kind[SLOT_KIND[slot]] if cands is None else cands
            if focus and not focus & set(assign.values()) and rng.random() < 0.6:
                pool = [i for i in pool if i in focus] or pool
            if not pool:
                break
            assign[slot] = rng.choice(pool)
        else:
            if consistent(t, assign, world):
                return assign
    return None


def pick_alias(ent: Entity, lang: str, rng: random.Random, world: World,
               shared: bool = False) -> Alias:
    """An in-text alias of ``ent``, mostly the main one. A shared alias only where
    ``shared`` (then always, if ``ent`` has one) or where ``ent`` has no other."""
    usable = [a for a in (ent.en if lang == "en" else ent.fr) if a.in_text]
    mine = [a for a in usable if world.shared(lang, a.text)]
    if shared and mine:
        return mine[0]
    usable = [a for a in usable if a not in mine] or usable
    if len(usable) == 1 or rng.random() < 0.75:
        return usable[0]
    return rng.choice(usable[1:])


def ambiguity(world: World, lang: str, r: Rendered) -> tuple[str, tuple[str, ...]]:
    """How the linker treats the shared aliases of ``r``: ("", ()) with none; ("resolved",
    ()) when it links each to the intended entity; ("dropped", ids) when it drops each;
    ("mixed", ()) otherwise (some resolved and some dropped, or a wrong link)."""
    shared = [i for text, i in r.mentions if world.shared(lang, text)]
    if not shared:
        return "", ()
    got = dict(zip([i for _, i in r.mentions], world.link(lang, r.mentions), strict=True))
    if all(got[i] == i for i in shared):
        return "resolved", ()
    if all(got[i] is None for i in shared):
        return "dropped", tuple(sorted(shared))
    return "mixed", ()


def make_record(t: Template, world: World, rng: random.Random, rid: str,
                shared: bool = False) -> Record | None:
    """A record from ``t``; with ``shared``, entities with a shared alias are drawn more
    often and written under it."""
    assign = fill(t, world, rng, focus=world.focus if shared else None)
    if assign is None:
        return None
    ents = {s: world.entities[i] for s, i in assign.items()}
    values = {name: fn(rng) for name, fn in VARS.items()}
    values["job"] = (str(rng.randrange(len(JOBS))), "")
    kinds = {s: world.entities[i].kind for s, i in assign.items()}
    lo = max([1988] + [world.born_on[i][0] + 22 for s, i in assign.items() if kinds[s] == "PER"]
             + [world.founded_in[i] for s, i in assign.items() if kinds[s] == "ORG"])
    values["year"] = _number(rng.randint(min(lo, 2023), 2023), group=False)
    if kinds.get("p") == "PER":
        values["byear"] = _number(world.born_on[assign["p"]][0], group=False)
        values["bdate"] = _date(*world.born_on[assign["p"]])
    if kinds.get("o") == "ORG":
        values["fyear"] = _number(world.founded_in[assign["o"]], group=False)
    if (assign.get("p"), assign.get("q")) in world.married_in:
        values["myear"] = _number(world.married_in[assign["p"], assign["q"]], group=False)
    names = {lang: {s: pick_alias(e, lang, rng, world, shared) for s, e in ents.items()}
             for lang in ("en", "fr")}
    en = render(t.en, "en", ents, names["en"], values)
    fr = render(t.fr, "fr", ents, names["fr"], values)
    amb = ambiguity(world, "en", en)
    if amb != ambiguity(world, "fr", fr) or amb[0] == "mixed":
        return None
    triples = tuple(sorted(expressed(t, assign)))
    if any(h in amb[1] or tl in amb[1] for h, _, tl in triples):
        return None  # a fact stated through a mention the linker drops
    return Record(rid, en, fr, triples, t.key, *amb)


def category_plan(n: int, mix: dict[str, float], rng: random.Random) -> list[str]:
    counts = {c: round(n * w) for c, w in mix.items()}
    counts["fact"] += n - sum(counts.values())
    plan = [c for c, k in counts.items() for _ in range(k)]
    rng.shuffle(plan)
    return plan


def generate(templates: list[Template], n: int, mix: dict[str, float],
             rel_weights: dict[str, int] | None, prefix: str, world: World,
             rng: random.Random, seen: set[str]) -> list[Record]:
    """``n`` records drawn from ``templates`` in the proportions of ``mix``; a sentence
    already in ``seen`` (either language) is drawn again."""
    by_cat: dict[str, list[Template]] = {}
    for t in templates:
        by_cat.setdefault(t.category, []).append(t)
    by_rel: dict[str, list[Template]] = {}
    for t in by_cat["fact"]:
        by_rel.setdefault(t.facts[0][1], []).append(t)
    rels = list(by_rel)
    weights = [rel_weights[r] if rel_weights else 1 for r in rels]
    # Shared-alias sentences: "amb" states facts, and the linker resolves every shared
    # alias by KB evidence; "amb_drop" states no fact, and the linker drops the mention.
    by_cat["amb"] = by_cat["fact"] + by_cat["multi"]
    by_cat["amb_drop"] = by_cat["na"] + by_cat["single"]
    want = {"amb": "resolved", "amb_drop": "dropped"}
    out: list[Record] = []
    for cat in category_plan(n, mix, rng):
        for _ in range(1000):
            if cat == "fact":
                t = rng.choice(by_rel[rng.choices(rels, weights)[0]])
            else:
                t = rng.choice(by_cat[cat])
            rec = make_record(t, world, rng, f"{prefix}-{len(out) + 1:06d}", cat in want)
            if (rec and rec.ambiguous == want.get(cat, "") and rec.en.text not in seen
                    and rec.fr.text not in seen):
                break
        else:
            raise RuntimeError(f"could not draw a new {cat} sentence; lower --pairs")
        seen.update((rec.en.text, rec.fr.text))
        out.append(rec)
    return out


# --------------------------------------------------------------------------- output


def write_kb(world: World, kb_dir: Path) -> None:
    kb_dir.mkdir(parents=True, exist_ok=True)
    with open(kb_dir / "entities.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for e in world.entities.values():
            obj = {"id": e.id, "type": KB_TYPE[e.kind],
                   "labels": {"en": [a.text for a in e.en], "fr": [a.text for a in e.fr]}}
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    with open(kb_dir / "relations.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for rid, en, fr in RELATIONS:
            fh.write(json.dumps({"id": rid, "labels": {"en": en, "fr": fr}},
                                ensure_ascii=False) + "\n")
    with open(kb_dir / "triples.tsv", "w", encoding="utf-8", newline="\n") as fh:
        for h, r, t in world.triples:
            fh.write(f"{h}\t{r}\t{t}\n")


def write_pairs(records: list[Record], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(f"{rec.id}\t{rec.en.text}\t{rec.fr.text}\n")


def write_gold(records: list[Record], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            triples = [{"subject": h, "relation": r, "object": t} for h, r, t in rec.triples]
            for lang, r in (("en", rec.en), ("fr", rec.fr)):
                obj = {"id": rec.id, "lang": lang, "text": r.text, "triples": triples}
                fh.write(json.dumps(obj, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- checks


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"self-check failed: {what}")


class AliasScanner:
    """A stdlib stand-in for xlre's gazetteer: every KB alias of one language matched on
    word boundaries, longest first, with the same case policy (``smart``). A match gives
    the alias text and all the entities it names (several for a shared alias)."""

    def __init__(self, world: World, lang: str) -> None:
        self.entries: list[tuple[str, tuple[str, ...], re.Pattern[str]]] = []
        done: set[str] = set()
        for e in world.entities.values():
            for a in e.en if lang == "en" else e.fr:
                if a.text in done:
                    continue
                done.add(a.text)
                owners = tuple(sorted(world.owners[lang][a.text.casefold()]))
                _require(len(owners) == 1 or a.text in SHARED_ALIASES,
                         f"{lang} alias {a.text!r} names {owners}, not in SHARED_ALIASES")
                exact = len(a.text) <= 3 or a.text.isupper()
                flags = 0 if exact else re.IGNORECASE
                pattern = re.compile(r"(?<!\w)" + re.escape(a.text) + r"(?!\w)", flags)
                self.entries.append((a.text, owners, pattern))
        shared = {text for text, owners, _ in self.entries if len(owners) > 1}
        _require(shared == set(SHARED_ALIASES), f"{lang} shared aliases {sorted(shared)}")

    def find(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        folded = text.casefold()
        found: list[tuple[int, int, tuple[str, ...]]] = []
        for alias_text, owners, pattern in self.entries:
            if alias_text.casefold() not in folded:
                continue
            for m in pattern.finditer(text):
                if alias_text[0].isupper() and not m.group(0)[0].isupper():
                    continue
                found.append((m.start(), m.end(), owners))
        found.sort(key=lambda f: (f[0] - f[1], f[0]))
        taken: list[tuple[int, int, tuple[str, ...]]] = []
        for s, e, owners in found:
            if all(e <= ts or s >= te for ts, te, _ in taken):
                taken.append((s, e, owners))
        return sorted((text[s:e], o) for s, e, o in taken)


def self_check(out: Path, world: World, train: list[Record], held: list[Record]) -> None:
    """Read the output back and verify the guarantees of the module docstring."""
    ents = {}
    for line in (out / "kb" / "entities.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        ents[obj["id"]] = obj
    rel_ids = {json.loads(x)["id"]
               for x in (out / "kb" / "relations.jsonl").read_text(encoding="utf-8").splitlines()}
    used: set[str] = set()
    kb_triples: set[tuple[str, str, str]] = set()
    for line in (out / "kb" / "triples.tsv").read_text(encoding="utf-8").splitlines():
        h, r, t = line.split("\t")
        _require(h in ents and t in ents and r in rel_ids, f"unknown id in triple {line!r}")
        used.update((h, t))
        kb_triples.add((h, r, t))
    _require(used == set(ents), f"entities in no triple: {sorted(set(ents) - used)}")
    _require(len(kb_triples) == len(world.triples), "duplicate KB triples")

    scanners = {lang: AliasScanner(world, lang) for lang in ("en", "fr")}
    seen: dict[str, set[str]] = {"id": set(), "en": set(), "fr": set()}
    for name, records in (("parallel.tsv", train), ("heldout.tsv", held)):
        lines = (out / name).read_text(encoding="utf-8").split("\n")
        _require(lines[-1] == "" and len(lines) - 1 == len(records), f"{name}: line count")
        for line, rec in zip(lines, records, strict=False):
            fields = line.split("\t")
            _require(len(fields) == 3 and all(f.strip() == f and f for f in fields),
                     f"{name}: bad line {line!r}")
            for key, value in zip(("id", "en", "fr"), fields, strict=True):
                _require(value not in seen[key], f"{name}: repeated {key} {value!r}")
                seen[key].add(value)
            for lang, r in (("en", rec.en), ("fr", rec.fr)):
                for text, ent_id in r.mentions:
                    _require(text in ents[ent_id]["labels"][lang] and text in r.text,
                             f"{rec.id} {lang}: {text!r} is not a {lang} alias of {ent_id}")
                found = scanners[lang].find(r.text)
                _require([t for t, _ in found] == sorted(t for t, _ in r.mentions)
                         and all(i in o for (_, o), (_, i) in zip(found, sorted(r.mentions),
                                                                  strict=True)),
                         f"{rec.id} {lang}: aliases found {found} "
                         f"!= intended {sorted(r.mentions)} in {r.text!r}")
                _require(ambiguity(world, lang, r) == (rec.ambiguous, rec.dropped),
                         f"{rec.id} {lang}: linking of shared aliases is not {rec.ambiguous!r}")
            # the entities the linker keeps: all but the dropped shared-alias mentions
            ids = sorted({i for _, i in rec.en.mentions} - set(rec.dropped))
            _require(ids == sorted({i for _, i in rec.fr.mentions} - set(rec.dropped)),
                     f"{rec.id}: EN/FR entities")
            labels = {tr for i, a in enumerate(ids) for b in ids[i + 1:] for tr in world.between(a, b)}
            _require(labels == set(rec.triples) and labels <= kb_triples,
                     f"{rec.id}: KB facts between its entities {sorted(labels)} "
                     f"!= expressed {sorted(rec.triples)}")
    gold = (out / "heldout-gold.jsonl").read_text(encoding="utf-8").splitlines()
    _require(len(gold) == 2 * len(held), "heldout-gold.jsonl: one line per sentence per language")
    for name, records in (("parallel.tsv", train), ("heldout.tsv", held)):
        amb = [r for r in records if r.ambiguous]
        _require(len(records) < 100 or (any(r.ambiguous == "resolved" for r in amb)
                                         and any(r.ambiguous == "dropped" for r in amb)),
                 f"{name}: no resolvable or no unresolvable shared-alias sentence")


def check_with_linker(out: Path, train: list[Record], held: list[Record]) -> dict[str, int]:
    """Run xlre's own linker (``xlre.kb``, spaCy tokenization) over the output: every
    sentence links exactly its intended entities, minus the planned drops of shared
    aliases; and every held-out gold line equals the distant labels (KB facts between the
    linked entities). Needs the project installed; returns counts of what it checked."""
    from alignment.tokenize import Tokenizer
    from xlre.kb import EntityLinker, Gazetteer, LinkStats, load_kb

    kb = load_kb(out / "kb")
    linkers = {lang: (Tokenizer(lang), EntityLinker(kb, Gazetteer(kb, lang)))
               for lang in ("en", "fr")}
    stats = {lang: LinkStats() for lang in linkers}

    def link(lang: str, text: str) -> list[str]:
        tok, linker = linkers[lang]
        return [e.kb_id for e in linker.link(tok(text), stats[lang]) if e.kb_id]

    expect = {"resolved_by_kb": 0, "ambiguous": 0}
    for rec in train + held:
        for lang, r in (("en", rec.en), ("fr", rec.fr)):
            want = [i for _, i in r.mentions if i not in rec.dropped]
            got = link(lang, r.text)
            _require(got == want, f"linker on {rec.id} {lang}: {got} != intended {want} "
                     f"in {r.text!r}")
            n_shared = sum(text in SHARED_ALIASES for text, _ in r.mentions)
            expect["resolved_by_kb" if rec.ambiguous == "resolved" else "ambiguous"] += n_shared
    got_counts = {"resolved_by_kb": sum(s.resolved_by_kb for s in stats.values()),
                  "ambiguous": sum(s.dropped["ambiguous"] for s in stats.values())}
    _require(got_counts == expect, f"linker counts {got_counts} != expected {expect}")
    n_gold = 0
    for line in (out / "heldout-gold.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        ids = link(obj["lang"], obj["text"])
        labels = {(h, r, t) for h in ids for t in ids if h != t
                  for r in kb.relations_between(h, t)}
        gold = {(x["subject"], x["relation"], x["object"]) for x in obj["triples"]}
        _require(labels == gold, f"{obj['id']} {obj['lang']}: distant labels {sorted(labels)} "
                 f"!= gold {sorted(gold)}")
        n_gold += 1
    return {"sentences": 2 * (len(train) + len(held)), "gold_lines": n_gold, **got_counts}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--pairs", type=int, default=3000, help="pairs in parallel.tsv")
    parser.add_argument("--heldout", type=int, default=200, help="pairs in heldout.tsv")
    parser.add_argument("--seed", type=int, default=13, help="random seed (KB does not depend on it)")
    parser.add_argument("--check-with-linker", action="store_true",
                        help="also run xlre's own entity linker over the output (needs xlre)")
    args = parser.parse_args()

    world = build_world()
    rng = random.Random(args.seed)
    seen: set[str] = set()
    train = generate(TRAIN, args.pairs, TRAIN_MIX, TRAIN_RELATION_WEIGHTS, "demo", world, rng,
                     seen)
    held = generate(HELDOUT, args.heldout, HELDOUT_MIX, None, "heldout", world, rng, seen)

    args.out.mkdir(parents=True, exist_ok=True)
    write_kb(world, args.out / "kb")
    write_pairs(train, args.out / "parallel.tsv")
    write_pairs(held, args.out / "heldout.tsv")
    write_gold(held, args.out / "heldout-gold.jsonl")
    self_check(args.out, world, train, held)
    print(f"wrote {len(world.entities)} entities, {len(world.triples)} triples, "
          f"{len(train)} pairs and {len(held)} held-out pairs to {args.out} (checks passed)")
    for name, records in (("parallel.tsv", train), ("heldout.tsv", held)):
        n = {k: sum(r.ambiguous == k for r in records) for k in ("resolved", "dropped")}
        print(f"{name}: shared-alias pairs {n['resolved']} resolvable by the KB, "
              f"{n['dropped']} unresolvable")
    if args.check_with_linker:
        print(f"xlre linker check passed: {check_with_linker(args.out, train, held)}")


if __name__ == "__main__":
    main()
