"""A seeded generator of a fictional knowledge base: countries, cities, people and organizations, and their documents.

Every name is made of invented syllables, so no fact about these entities can be known from pretraining.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from env_server.envs.searchqa.corpus import Document

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "qu", "r", "s", "st", "t",
           "th", "tr", "v", "vr", "z", "zh", "sk", "c", "j")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ae", "ei", "ou", "y")
_CODAS = ("", "", "", "", "n", "r", "l", "s", "th", "nd", "rk", "x", "m", "sk", "v", "ll", "rn")
_OCCUPATIONS = ("cartographer", "glassblower", "astronomer", "shipwright", "botanist", "violinist", "architect",
                "engraver", "geologist", "playwright", "clockmaker", "physician", "sculptor", "linguist",
                "mathematician", "brewer", "bookbinder", "chemist", "photographer", "lacemaker")
_INDUSTRIES = (("Instruments", "scientific instrument"), ("Shipping Company", "shipping"), ("Press", "publishing"),
               ("Foundry", "metalworking"), ("Mills", "textile"), ("Bank", "banking"), ("Ceramics", "pottery"),
               ("Telegraph Company", "telegraph"), ("Optics", "optical"), ("Seed Company", "agricultural"))
_LANGUAGE_SUFFIXES = ("ic", "ian", "ese", "ish")
_CURRENCIES = ("crown", "mark", "florin", "thaler", "sol", "dinar", "ducat", "real")
_RIVER_WORDS = ("river", "estuary", "lake", "bay")


@dataclass(frozen=True, slots=True)
class Country:
    name: str
    capital: int  # city index
    language: str
    currency: str


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: int
    founded: int
    population: int
    water: str  # "the Vrell river"


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    pronoun: str  # "He" or "She"
    born: int
    died: int
    birthplace: int  # city index
    occupation: str
    employer: int  # organization index


@dataclass(frozen=True, slots=True)
class Organization:
    name: str
    industry: str
    founded: int
    founder: int  # person index
    headquarters: int  # city index


@dataclass(frozen=True, slots=True)
class KBConfig:
    """Sizes of the generated knowledge base; the seed fixes every name, fact and sentence."""

    seed: int = 20240611
    countries: int = 40
    cities: int = 400
    people: int = 1200
    organizations: int = 400


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    countries: tuple[Country, ...]
    cities: tuple[City, ...]
    people: tuple[Person, ...]
    organizations: tuple[Organization, ...]

    def documents(self, seed: int) -> tuple[Document, ...]:
        """One encyclopedia-style document per entity; ids are `kb-<kind>-<index>`."""
        rng = random.Random(seed)
        docs = [Document(f"kb-country-{i:04d}", c.name, self._country_text(c, rng))
                for i, c in enumerate(self.countries)]
        docs += [Document(f"kb-city-{i:04d}", c.name, self._city_text(c, rng)) for i, c in enumerate(self.cities)]
        founded: dict[int, list[Organization]] = {}
        for org in self.organizations:
            founded.setdefault(org.founder, []).append(org)
        docs += [Document(f"kb-person-{i:04d}", p.name, self._person_text(p, founded.get(i, []), rng))
                 for i, p in enumerate(self.people)]
        docs += [Document(f"kb-org-{i:04d}", o.name, self._org_text(o, rng)) for i, o in enumerate(self.organizations)]
        return tuple(docs)

    def _country_text(self, country: Country, rng: random.Random) -> str:
        capital = self.cities[country.capital].name
        opening = rng.choice((
            f"{country.name} is a country whose capital and largest city is {capital}.",
            f"{country.name} is a sovereign state; its capital is {capital}.",
        ))
        return (f"{opening} The official language of {country.name} is {country.language}, and its currency is the "
                f"{country.name} {country.currency}.")

    def _city_text(self, city: City, rng: random.Random) -> str:
        country = self.countries[city.country].name
        opening = rng.choice((
            f"{city.name} is a city in {country}, on {city.water}.",
            f"{city.name} is a city of {country} that lies on {city.water}.",
        ))
        founded = rng.choice((f"It was founded in {city.founded}", f"The city was founded in {city.founded}"))
        return f"{opening} {founded} and had a population of {city.population:,} at the last census."

    def _person_text(self, person: Person, founded: list[Organization], rng: random.Random) -> str:
        city = self.cities[person.birthplace]
        employer = self.organizations[person.employer].name
        surname = person.name.split()[-1]
        parts = [
            f"{person.name} ({person.born}\u2013{person.died}) was {_article(person.occupation)}.",
            rng.choice((f"{surname} was born in {city.name} in {person.born}.",
                        (f"Born in {person.born} in the city of {city.name}, {surname} trained as "
                         f"{_article(person.occupation)}."))),
            rng.choice((f"{person.pronoun} spent most of {_possessive(person.pronoun)} career at {employer}.",
                        f"{person.pronoun} later worked for {employer}.")),
        ]
        parts += [f"In {o.founded}, {surname} founded {o.name}." for o in founded]
        return " ".join(parts)

    def _org_text(self, org: Organization, rng: random.Random) -> str:
        city = self.cities[org.headquarters].name
        founder = self.people[org.founder].name
        # The country is left out on purpose: finding it takes another hop, through the city's own document.
        opening = rng.choice((
            f"{org.name} is {_article(org.industry)} company headquartered in {city}.",
            f"{org.name} is {_article(org.industry)} firm based in {city}.",
        ))
        return f"{opening} It was founded in {org.founded} by {founder}."


def invented_words(kb: KnowledgeBase) -> tuple[str, ...]:
    """The invented words of every name in the knowledge base, sorted: the generator's English words (river,
    bank, company) and function words are left out."""
    names = [c.name for c in kb.countries] + [c.language for c in kb.countries]
    names += [c.name for c in kb.cities] + [c.water for c in kb.cities]
    names += [p.name for p in kb.people] + [o.name for o in kb.organizations]
    english = {w.lower() for phrase in (*(s for s, _ in _INDUSTRIES), *_RIVER_WORDS, "the") for w in phrase.split()}
    return tuple(sorted({w.lower() for name in names for w in name.split()} - english))


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _possessive(pronoun: str) -> str:
    return "his" if pronoun == "He" else "her"


class _Names:
    """Unique invented words: every name handed out is new, across all entity kinds."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def word(self, syllables: int) -> str:
        while True:
            word = "".join(self._rng.choice(_ONSETS) + self._rng.choice(_VOWELS) + self._rng.choice(_CODAS)
                           for _ in range(syllables)).capitalize()
            if len(word) >= 5 and word not in self._used:
                self._used.add(word)
                return word


def generate(config: KBConfig) -> KnowledgeBase:
    rng = random.Random(config.seed)
    names = _Names(rng)
    first_names = [names.word(2) for _ in range(max(10, config.people // 4))]
    surnames = [names.word(rng.choice((2, 3))) for _ in range(max(10, config.people // 3))]

    country_names = [names.word(3) for _ in range(config.countries)]
    cities = []
    for i in range(config.cities):
        # The first cities are the capitals, one per country.
        country = i if i < config.countries else rng.randrange(config.countries)
        water = f"the {names.word(2)} {rng.choice(_RIVER_WORDS)}"
        cities.append(City(names.word(rng.choice((2, 3))), country, rng.randrange(800, 1850),
                           rng.randrange(20, 900) * 100 + rng.randrange(100), water))
    countries = tuple(
        Country(name, i, f"{name[:-1] if name[-1] in 'aeiouy' else name}{rng.choice(_LANGUAGE_SUFFIXES)}",
                rng.choice(_CURRENCIES))
        for i, name in enumerate(country_names)
    )

    full_names: set[str] = set()
    people_draft = []
    for _ in range(config.people):
        while True:
            name = f"{rng.choice(first_names)} {rng.choice(surnames)}"
            if name not in full_names:
                full_names.add(name)
                break
        born = rng.randrange(1700, 1950)
        people_draft.append((name, rng.choice(("He", "She")), born, born + rng.randrange(62, 96),
                             rng.randrange(config.cities), rng.choice(_OCCUPATIONS)))

    org_roots = [names.word(rng.choice((2, 3))) for _ in range(config.organizations)]
    founders = rng.sample(range(config.people), config.organizations)
    organizations = []
    for root, founder in zip(org_roots, founders):
        suffix, industry = rng.choice(_INDUSTRIES)
        founded = people_draft[founder][2] + rng.randrange(22, 60)
        organizations.append(Organization(f"{root} {suffix}", industry, founded, founder, rng.randrange(config.cities)))

    people = tuple(Person(*draft, employer=rng.randrange(config.organizations)) for draft in people_draft)
    return KnowledgeBase(countries, tuple(cities), people, tuple(organizations))
