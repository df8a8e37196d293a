"""Seeded 1-, 2- and 3-hop questions (bridge and comparison) over a generated knowledge base.

A question's hops are the documents that hold the facts it needs, in the order an agent can find them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from env_server.envs.searchqa.kb import KnowledgeBase

HOPS_BY_DIFFICULTY = {"easy": 1, "medium": 2, "hard": 3}


@dataclass(frozen=True, slots=True)
class Hop:
    query: str  # the search that finds the document: the entity's name
    doc_id: str


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    answers: tuple[str, ...]
    hops: tuple[Hop, ...]
    kind: str  # template name, e.g. "bridge:founder_born"


_Drawn = tuple[tuple[object, ...], Question] | None
_Template = Callable[[KnowledgeBase, random.Random], _Drawn]


def _country(kb: KnowledgeBase, i: int) -> Hop:
    return Hop(kb.countries[i].name, f"kb-country-{i:04d}")


def _city(kb: KnowledgeBase, i: int) -> Hop:
    return Hop(kb.cities[i].name, f"kb-city-{i:04d}")


def _person(kb: KnowledgeBase, i: int) -> Hop:
    return Hop(kb.people[i].name, f"kb-person-{i:04d}")


def _org(kb: KnowledgeBase, i: int) -> Hop:
    return Hop(kb.organizations[i].name, f"kb-org-{i:04d}")


# Each template draws entities and returns (dedup key, question), or None when the draw does not fit.

def _person_born(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    p = rng.randrange(len(kb.people))
    person = kb.people[p]
    return ("person_born", p), Question(f"In what year was {person.name} born?", (str(person.born),),
                                        (_person(kb, p),), "single:person_born")


def _person_birthplace(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    p = rng.randrange(len(kb.people))
    person = kb.people[p]
    return ("person_birthplace", p), Question(f"In which city was {person.name} born?",
                                              (kb.cities[person.birthplace].name,), (_person(kb, p),),
                                              "single:person_birthplace")


def _org_founder(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    o = rng.randrange(len(kb.organizations))
    org = kb.organizations[o]
    return ("org_founder", o), Question(f"Who founded {org.name}?", (kb.people[org.founder].name,),
                                        (_org(kb, o),), "single:org_founder")


def _org_founded(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    o = rng.randrange(len(kb.organizations))
    org = kb.organizations[o]
    return ("org_founded", o), Question(f"In what year was {org.name} founded?", (str(org.founded),),
                                        (_org(kb, o),), "single:org_founded")


def _city_country(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    c = rng.randrange(len(kb.cities))
    city = kb.cities[c]
    return ("city_country", c), Question(f"In which country is the city of {city.name}?",
                                         (kb.countries[city.country].name,), (_city(kb, c),), "single:city_country")


def _country_capital(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    k = rng.randrange(len(kb.countries))
    country = kb.countries[k]
    return ("country_capital", k), Question(f"What is the capital of {country.name}?",
                                            (kb.cities[country.capital].name,), (_country(kb, k),),
                                            "single:country_capital")


def _founder_born(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    o = rng.randrange(len(kb.organizations))
    org = kb.organizations[o]
    return ("founder_born", o), Question(f"In what year was the founder of {org.name} born?",
                                         (str(kb.people[org.founder].born),),
                                         (_org(kb, o), _person(kb, org.founder)), "bridge:founder_born")


def _person_country(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    p = rng.randrange(len(kb.people))
    person = kb.people[p]
    city = kb.cities[person.birthplace]
    return ("person_country", p), Question(f"In which country is the city where {person.name} was born?",
                                           (kb.countries[city.country].name,),
                                           (_person(kb, p), _city(kb, person.birthplace)), "bridge:person_country")


def _employer_founder(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    p = rng.randrange(len(kb.people))
    person = kb.people[p]
    org = kb.organizations[person.employer]
    if org.founder == p:
        return None
    return ("employer_founder", p), Question(f"Who founded the company that {person.name} worked for?",
                                             (kb.people[org.founder].name,),
                                             (_person(kb, p), _org(kb, person.employer)), "bridge:employer_founder")


def _compare_born(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    a, b = rng.sample(range(len(kb.people)), 2)
    pa, pb = kb.people[a], kb.people[b]
    if pa.born == pb.born:
        return None
    earlier = pa if pa.born < pb.born else pb
    return ("compare_born", min(a, b), max(a, b)), Question(f"Who was born earlier, {pa.name} or {pb.name}?",
                                                            (earlier.name,), (_person(kb, a), _person(kb, b)),
                                                            "comparison:born")


def _compare_founded(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    a, b = rng.sample(range(len(kb.organizations)), 2)
    oa, ob = kb.organizations[a], kb.organizations[b]
    if oa.founded == ob.founded:
        return None
    older = oa if oa.founded < ob.founded else ob
    return ("compare_founded", min(a, b), max(a, b)), Question(
        f"Which was founded first, {oa.name} or {ob.name}?", (older.name,), (_org(kb, a), _org(kb, b)),
        "comparison:founded")


def _founder_birth_country(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    o = rng.randrange(len(kb.organizations))
    org = kb.organizations[o]
    founder = kb.people[org.founder]
    city = kb.cities[founder.birthplace]
    return ("founder_birth_country", o), Question(
        f"In which country is the city where the founder of {org.name} was born?", (kb.countries[city.country].name,),
        (_org(kb, o), _person(kb, org.founder), _city(kb, founder.birthplace)), "bridge:founder_birth_country")


def _founder_birthplace_founded(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    o = rng.randrange(len(kb.organizations))
    org = kb.organizations[o]
    founder = kb.people[org.founder]
    return ("founder_birthplace_founded", o), Question(
        f"In what year was the birthplace of the founder of {org.name} founded?",
        (str(kb.cities[founder.birthplace].founded),),
        (_org(kb, o), _person(kb, org.founder), _city(kb, founder.birthplace)), "bridge:founder_birthplace_founded")


def _employer_hq_country(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    p = rng.randrange(len(kb.people))
    person = kb.people[p]
    org = kb.organizations[person.employer]
    city = kb.cities[org.headquarters]
    return ("employer_hq_country", p), Question(
        f"In which country is the headquarters of the company that {person.name} worked for?",
        (kb.countries[city.country].name,),
        (_person(kb, p), _org(kb, person.employer), _city(kb, org.headquarters)), "bridge:employer_hq_country")


def _compare_founder_born(kb: KnowledgeBase, rng: random.Random) -> _Drawn:
    o = rng.randrange(len(kb.organizations))
    org = kb.organizations[o]
    other = rng.randrange(len(kb.people))
    founder, rival = kb.people[org.founder], kb.people[other]
    if other == org.founder or founder.born == rival.born:
        return None
    earlier = founder if founder.born < rival.born else rival
    return ("compare_founder_born", o, other), Question(
        f"Who was born earlier, the founder of {org.name} or {rival.name}?", (earlier.name,),
        (_org(kb, o), _person(kb, org.founder), _person(kb, other)), "comparison:founder_born")


_TEMPLATES: dict[str, tuple[_Template, ...]] = {
    "easy": (_person_born, _person_birthplace, _org_founder, _org_founded, _city_country, _country_capital),
    "medium": (_founder_born, _person_country, _employer_founder, _compare_born, _compare_founded),
    "hard": (_founder_birth_country, _founder_birthplace_founded, _employer_hq_country, _compare_founder_born),
}


def generate_questions(kb: KnowledgeBase, difficulty: str, count: int, seed: int) -> tuple[Question, ...]:
    """`count` distinct questions of one difficulty, cycling through its templates (a used-up one is skipped)."""
    rng = random.Random(f"{seed}:{difficulty}")
    templates = _TEMPLATES[difficulty]
    seen: set[tuple[object, ...]] = set()
    questions: list[Question] = []
    attempts = 0
    while len(questions) < count:
        attempts += 1
        if attempts > 50 * count:
            raise ValueError(f"the knowledge base is too small for {count} distinct {difficulty} questions")
        drawn = templates[attempts % len(templates)](kb, rng)
        if drawn is None or drawn[0] in seen:
            continue
        seen.add(drawn[0])
        questions.append(drawn[1])
    return tuple(questions)
