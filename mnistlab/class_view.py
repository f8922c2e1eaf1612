"""A class as its pages show it: a student's seat kept by their browser, the challenge's rules in
plain words, the board's and the teacher's tables as rows, and how far a rank moved (▲2, ▼1)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from mnistlab.challenge import Challenge
from mnistlab.classes import Board, Member, Submission, check_code, check_handle
from mnistlab.errors import LabError

# What the browser keeps of a seat: code.handle.secret, the handle as base64url of its UTF-8 bytes
# (any printable letters, in a cookie that takes only a few).
SEAT_PATTERN = r"[A-Z2-9]{6}\.[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{1,100}"


@dataclass(frozen=True)
class Seat:
    """A student's place in a class: its code, their handle and the secret their submissions need."""

    code: str
    handle: str
    secret: str

    def __repr__(self) -> str:
        return f"Seat(code={self.code!r}, handle={self.handle!r}, secret=***)"

    def encode(self) -> str:
        handle = base64.urlsafe_b64encode(self.handle.encode()).decode().rstrip("=")
        return f"{self.code}.{handle}.{self.secret}"

    @classmethod
    def decode(cls, text: str | None) -> Seat | None:
        """The seat a browser kept, or None for none or anything malformed (a cookie typed by hand)."""
        try:
            code, handle, secret = str(text).split(".")
            raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
            return cls(check_code(code), check_handle(raw.decode())[0], secret)
        except (ValueError, binascii.Error, LabError):  # a code or handle no class could have
            return None


def rules(challenge: Challenge) -> list[str]:
    """The challenge in plain words, one line each."""
    families = " or ".join(f.upper() for f in challenge.families)
    ends = (f"Ends {challenge.ends:%A %d %B %Y, %H:%M} UTC." if challenge.ends else
            "Open until the teacher closes the class.")
    ladder = (f"**Ladder**: your shown score changes only when you beat your best shown score by at least "
              f"{challenge.ladder:g} percentage point{'s' * (challenge.ladder != 1)}, rounded to that step: "
              f"trying small changes against the board gains nothing."
              if challenge.ladder else "**Ladder**: none, every public score is shown as it is.")
    return [f"**Data set**: {challenge.data.title}: train on it (the sidebar's data set).",
            f"**Parameter budget**: at most {challenge.budget:,} parameters.",
            f"**Families**: {families}{' only' * (len(challenge.families) == 1)}.",
            f"**Submissions**: at most {challenge.limit} an hour each.",
            f"**End**: {ends}",
            ladder,
            "Scored on a hidden part of the test set that no page shows: a third of it (public) gives the "
            "board's score now, the rest (private) the final order once the class is closed."]


def plain(text: str) -> str:
    """Typed text (a handle, a class name) to put in Markdown as written: its Markdown characters
    escaped, so a handle cannot become a link or an image on someone's page."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~$-])", r"\\\1", str(text))


def moved(n: int | None) -> str:
    """A rank's move: ▲2 (up two), ▼1, = (stayed)."""
    if n is None:
        return ""
    return f"▲{n}" if n > 0 else f"▼{-n}" if n < 0 else "="


def board_rows(board: Board) -> list[dict]:
    """The board as a table: public ranks while open; the final order by private score once closed."""
    if not board.closed:
        return [{"rank": s.rank, "handle": s.handle, "public score": s.public * 100,
                 "parameters": s.parameters, "architecture": s.architecture, "submissions": s.submissions}
                for s in board.standings]
    return [{"final rank": s.final_rank, "moved": moved(s.moved), "handle": s.handle,
             "private score": s.private * 100, "public rank": s.rank, "public score": s.public * 100,
             "parameters": s.parameters, "architecture": s.architecture}
            for s in board.final()]


def submission_rows(subs: tuple[Submission, ...], teacher: bool = False) -> list[dict]:
    rows = []
    for s in subs:
        row = {"number": s.id, "submitted (UTC)": f"{s.submitted:%d %b %H:%M}"}
        if teacher:
            row["handle"] = s.handle
        row |= {"architecture": s.architecture, "parameters": s.parameters, "shown score": s.shown * 100}
        if teacher:
            row["public score"] = s.public * 100 if s.public is not None else None
        if s.private is not None:
            row["private score"] = s.private * 100
        if teacher:
            row["removed"] = s.removed
        rows.append(row)
    return rows


def member_rows(members: tuple[Member, ...], activity: dict) -> list[dict]:
    """The teacher's board: each student, what they train now, their best validation and submission."""
    rows = []
    for m in members:
        a = activity.get(check_handle(m.handle)[1])
        rows.append({"handle": m.handle + (" (removed)" if m.removed else ""),
                     "training now": (f"{a.training} (since {a.updated:%H:%M} UTC)" if a and a.training
                                      else "—"),
                     "best validation": a.validation * 100 if a and a.validation is not None else None,
                     "its size": a.parameters if a else None,
                     "submitted": m.submissions,
                     "best score": m.best * 100 if m.best is not None else None})
    return rows
