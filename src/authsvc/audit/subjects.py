"""Naming an event's subject both ways before it is written.

An endpoint often knows only one name for the person it acted on: sign-up and password
reset know the email, a bearer token or an admin path the username. The writer fills in the
other from the (username, email) pairs it has seen, in events before this one, remembered in
a bounded map and, for names it does not hold, read from earlier events in one query per
batch (never one per event).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

Lookup = Callable[[Collection[str], Collection[str]], list[tuple[str, str, datetime]]]


class SubjectMap:
    """username <-> email, the pair seen last winning; the least recently used names are
    forgotten past ``capacity`` (the database still has them)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._email: OrderedDict[str, str] = OrderedDict()  # username -> email
        self._username: OrderedDict[str, str] = OrderedDict()  # email -> username

    def learn(self, username: str, email: str) -> None:
        self.learn_email(username, email)
        self.learn_username(email, username)

    def learn_email(self, username: str, email: str) -> None:
        """One side only: ``username``'s email (what a look-up by username answers)."""
        self._put(self._email, username, email)

    def learn_username(self, email: str, username: str) -> None:
        """One side only: the username ``email`` belongs to now."""
        self._put(self._username, email, username)

    def _put(self, index: OrderedDict[str, str], key: str, value: str) -> None:
        index[key] = value
        index.move_to_end(key)
        if len(index) > self.capacity:
            index.popitem(last=False)

    def email_of(self, username: str) -> str | None:
        return self._recall(self._email, username)

    def username_of(self, email: str) -> str | None:
        return self._recall(self._username, email)

    @staticmethod
    def _recall(index: OrderedDict[str, str], key: str) -> str | None:
        value = index.get(key)
        if value is not None:
            index.move_to_end(key)
        return value


def fill(batch: list[dict[str, Any]], known: SubjectMap, lookup: Lookup) -> int:
    """Complete each row's ``target``/``target_email`` from the pairs named before it (in the
    batch, in ``known``, or by ``lookup`` for names ``known`` lacks). Returns the number of
    lookups made: 0 or 1."""
    emails = {
        email
        for r in batch
        if r["target"] is None and (email := r["target_email"]) and known.username_of(email) is None
    }
    usernames = {
        r["target"]
        for r in batch
        if r["target_email"] is None and r["target"] and known.email_of(r["target"]) is None
    }
    queries = 0
    if emails or usernames:
        queries = 1
        pairs = lookup(emails, usernames)
        # Oldest first, so the newest pair wins; and only the side asked about: a pair found
        # for an old username must not take its address from the account that has it now.
        for username, email, _ in sorted(pairs, key=lambda p: _aware(p[2])):
            if username in usernames:
                known.learn_email(username, email)
            if email in emails:
                known.learn_username(email, username)
    # In order: an event names only what was known when it happened (an address signed up
    # again after its account was deleted is another person from then on).
    for row in batch:
        target, email = row["target"], row["target_email"]
        if target and email:
            known.learn(target, email)
        elif email:
            row["target"] = known.username_of(email)
        elif target:
            row["target_email"] = known.email_of(target)
    return queries


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite reads naive
