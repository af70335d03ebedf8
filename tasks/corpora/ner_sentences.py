"""Synthetic named-entity sentences: Faker names, places, companies and dates in hand-written templates.

Each template holds slots `{PER}`, `{LOC}`, `{ORG}`, `{DATE}`; the filler's character span becomes an entity.
Evaluation sentences come only from held-out templates (their wording never appears in training), filled with
fresh draws, so entity F1 on them measures recognising entities in unseen contexts, not memorised sentences.
Rows hold both formats: `text` + `entities` (character spans) and `tokens` + `tags` (BIO per word, words from
`tasks.ner.split_words`). Deterministic for a seed and the pinned Faker version (requirements.txt).
"""

from __future__ import annotations

import datetime
import json
import random
import re
from pathlib import Path
from typing import Any

from tasks.ner import tags_from_entities

ENTITY_TYPES = ("PER", "LOC", "ORG", "DATE")
FIRST_DATE, LAST_DATE = datetime.date(1950, 1, 1), datetime.date(2030, 12, 31)
DATE_FORMATS = ("{month} {day}, {year}", "{day} {month} {year}", "{year}-{mm:02d}-{dd:02d}", "{month} {year}",
                "{mm}/{dd}/{year}")
SLOT = re.compile(r"\{(PER|LOC|ORG|DATE)\}")

TRAIN_TEMPLATES = (
    "{PER} was born in {LOC} on {DATE}.",
    "{PER} joined {ORG} in {DATE}.",
    "On {DATE}, {PER} flew from {LOC} to {LOC}.",
    "{ORG} opened a new office in {LOC}.",
    "{ORG} hired {PER} as its new director.",
    "The contract between {ORG} and {ORG} was signed on {DATE}.",
    "{PER} and {PER} met in {LOC} last summer.",
    "According to {PER}, {ORG} will expand into {LOC}.",
    "{PER} has lived in {LOC} since {DATE}.",
    "Shares of {ORG} fell sharply on {DATE}.",
    "{PER} left {ORG} after ten years.",
    "The festival in {LOC} starts on {DATE}.",
    "{ORG} moved its headquarters from {LOC} to {LOC}.",
    "I had lunch with {PER} yesterday.",
    "{PER} wrote to {PER} about the meeting on {DATE}.",
    "Our team visited {ORG} in {LOC}.",
    "{PER} is the founder of {ORG}.",
    "The report was published by {ORG} on {DATE}.",
    "Flights to {LOC} were cancelled on {DATE}.",
    "{PER} spoke at a conference in {LOC}.",
    "{ORG} announced a partnership with {ORG}.",
    "Please send the invoice to {PER} at {ORG}.",
    "The new bridge in {LOC} opened on {DATE}.",
    "{PER} retired on {DATE}.",
    "She studied in {LOC} before working for {ORG}.",
    "My cousin {PER} lives near {LOC}.",
    "The deadline is {DATE}.",
    "We signed the lease on {DATE} and moved to {LOC}.",
)
HELDOUT_TEMPLATES = (
    "Yesterday {PER} told reporters that {ORG} would close its plant in {LOC}.",
    "Born on {DATE}, {PER} grew up in {LOC}.",
    "A spokesperson for {ORG} declined to comment.",
    "{PER} became chief executive of {ORG} on {DATE}.",
    "Tourists in {LOC} can visit the museum until {DATE}.",
    "The lawsuit filed by {PER} against {ORG} was dismissed.",
    "Since {DATE}, {ORG} has sold its products in {LOC} and {LOC}.",
    "Do you remember when {PER} arrived from {LOC}?",
)


class EntityMaker:
    """Fillers for each entity type, drawn from one seeded Faker (en_US)."""

    def __init__(self, seed: int):
        from faker import Faker

        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)

    def __call__(self, kind: str) -> str:
        return getattr(self, kind.lower())()

    def per(self) -> str:
        f, r = self.fake, self.rng.random()
        if r < 0.75:
            return f"{f.first_name()} {f.last_name()}"
        if r < 0.9:
            return f"{f.first_name()} {f.first_name()} {f.last_name()}"
        return f.last_name()

    def loc(self) -> str:
        f, r = self.fake, self.rng.random()
        return f.city() if r < 0.5 else f.country() if r < 0.75 else f.state()

    def org(self) -> str:
        f, r = self.fake, self.rng.random()
        if r < 0.75:
            return f.company()
        if r < 0.9:
            return f"University of {f.city()}"
        return f"{f.last_name()} {self.rng.choice(['Foundation', 'Hospital', 'Bank', 'Institute'])}"

    def date(self) -> str:
        day = self.fake.date_between(FIRST_DATE, LAST_DATE)
        return self.rng.choice(DATE_FORMATS).format(month=day.strftime("%B"), day=day.day, year=day.year,
                                                    mm=day.month, dd=day.day)


def fill(template: str, make: EntityMaker) -> dict[str, Any]:
    """One row: the template with every slot filled, its entities' character spans, and BIO-tagged words."""
    text, entities, cursor = "", [], 0
    for match in SLOT.finditer(template):
        text += template[cursor : match.start()]
        value = make(match.group(1))
        entities.append({"start": len(text), "end": len(text) + len(value), "label": match.group(1)})
        text += value
        cursor = match.end()
    text += template[cursor:]
    tokens, tags = tags_from_entities(text, entities)
    return {"text": text, "entities": entities, "tokens": tokens, "tags": tags}


def ner_rows(n: int, templates: tuple[str, ...], seed: int) -> list[dict[str, Any]]:
    make = EntityMaker(seed)
    rng = random.Random(seed + 1)
    return [fill(templates[i % len(templates)] if i < len(templates) else rng.choice(templates), make) for i in range(n)]


def generate_ner_corpus(out: Path, n_train: int = 2000, n_eval: int = 500, seed: int = 0) -> dict[str, int]:
    """Write `out/train.jsonl` (training templates) and `out/eval.jsonl` (held-out templates)."""
    if n_train < 1 or n_eval < 1:
        raise ValueError(f"--train and --eval must be at least 1, got {n_train} and {n_eval}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": ner_rows(n_train, TRAIN_TEMPLATES, seed), "eval": ner_rows(n_eval, HELDOUT_TEMPLATES, seed + 10_000)}
    for name, rows in splits.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return {name: len(rows) for name, rows in splits.items()}
