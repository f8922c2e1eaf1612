"""What the class tests share: a clock they move, and a class made with its challenge set."""

from __future__ import annotations

from mnistlab.challenge import Challenge
from mnistlab.classes import ClassStore


class Clock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_class(url: str, name: str = "Year 10 B", clock=None, **rules):
    """A store on `url`, a new class in it and its challenge (`rules`: Challenge's fields, seed 7)."""
    store = ClassStore(url, clock=clock or Clock())
    made = store.create(name)
    store.set_challenge(made.code, made.key, Challenge(**{"seed": 7, **rules}))
    return store, made
