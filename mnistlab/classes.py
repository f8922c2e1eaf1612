"""A class of its own: a teacher's class, its students, its challenge and its board, in the app's
database (`db`: an SQLite file, or the PostgreSQL server MNISTLAB_DB names).

    store = ClassStore()                                  # or ClassStore(url)
    made = store.create("Year 10 B")                      # made.code "K7MQ2P"; made.key, shown once
    store.set_challenge(made.code, made.key, Challenge("mnist", budget=50_000, ladder=1))
    receipt = store.submit(made.code, "ada", saved)       # a new handle joins: receipt.secret, shown once
    store.submit(made.code, "ada", saved, secret=receipt.secret)
    store.board(made.code)                                # public ranks; private ones once closed
    store.close(made.code, made.key)

What a page calls (a `ClassStore` is cheap: `db.engine` keeps one engine per URL per process):

    teacher   create(name) → NewClass · set_challenge(code, key, Challenge) · members(code, key) →
              (Member, ...) · submissions(code, key) → (Submission, ...) · model_file(code, key, id)
              → bytes · remove_submission(code, key, id) · remove_student(code, key, handle) ·
              close(code, key) · check_key(code, key)
    student   join(code, handle) → secret · check_student(code, handle, secret) · submit(code,
              handle, SavedModel or bytes, secret=None) → Receipt · submissions(code, handle=,
              secret=) → their own
    anyone    info(code) → ClassInfo · challenge(code) → Challenge | None · board(code) → Board
    checks    check_code, check_handle, check_class_name (a ClassError each, for a form's field)

Pages that show test images one by one can leave out `challenge.hidden_indices(dataset)`.

Who may do what: whoever has the class code sees its challenge and board; a student submits under
a handle with the secret given when the handle joined; the teacher's key lists members and
submissions, removes them, and closes the class. Every query names its class: no class ever reads
another's rows. Keys and secrets are stored only as salted PBKDF2 hashes and compared with
`hmac.compare_digest`. Every refusal is a `ClassError` whose message says what was wrong and what is
allowed.

Submitted model files are stored in the database (a LargeBinary column), not in the models folder:
a submission and its file are then written in one transaction (nothing half-stored if the process
is killed), every server replica sharing the database sees them, and removing a class's rows removes
its files. They are small: a network within a challenge's budget is at most 4 bytes a parameter.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from mnistlab import challenge as challenges_
from mnistlab import db
from mnistlab.challenge import Challenge, Scores
from mnistlab.errors import ClassError

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: readable on a projector
CODE_LENGTH = 6
MAX_HANDLE = 24
MAX_CLASS_NAME = 80
MAX_SECRET = 100  # longer typed keys and secrets are refused without hashing them
KEY_GROUPS, SECRET_GROUPS = 5, 3  # of 4 characters: a teacher's key ~99 bits, a student's secret ~59
HASH_ITERATIONS = 100_000  # keys and secrets are random, not chosen: this guards a leaked table well
HANDLE_RULE = (f"A handle is 1 to {MAX_HANDLE} printable characters (spaces at either end are dropped), "
               f"and no two students of a class share one, whatever its letters' case")

classes = Table(
    "classes", db.METADATA,
    Column("id", Integer, primary_key=True),
    Column("code", String(CODE_LENGTH), nullable=False, unique=True),
    Column("name", String(MAX_CLASS_NAME), nullable=False),
    Column("key_hash", String(200), nullable=False),
    Column("created", Float, nullable=False),  # Unix seconds
    Column("closed", Float),  # when the teacher closed it; None while open
)

class_challenges = Table(  # one per class; Challenge's fields
    "class_challenges", db.METADATA,
    Column("class_id", Integer, ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset", String(16), nullable=False),
    Column("budget", Integer, nullable=False),
    Column("families", String(16), nullable=False),  # "mlp" or "mlp,cnn"
    Column("per_hour", Integer, nullable=False),
    Column("ends", Float),
    Column("ladder", Float),  # percentage points; None: no Ladder
    Column("seed", Integer, nullable=False),
    Column("public_fraction", Float, nullable=False),
)

class_members = Table(
    "class_members", db.METADATA,
    Column("id", Integer, primary_key=True),
    Column("class_id", Integer, ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
    Column("handle", String(4 * MAX_HANDLE), nullable=False),  # as typed (trimmed)
    Column("handle_key", String(4 * MAX_HANDLE), nullable=False),  # casefolded: what is unique
    Column("secret_hash", String(200), nullable=False),
    Column("joined", Float, nullable=False),
    Column("removed", Float),  # when the teacher removed the student
    UniqueConstraint("class_id", "handle_key"),
)

class_submissions = Table(
    "class_submissions", db.METADATA,
    Column("id", Integer, primary_key=True),
    Column("class_id", Integer, ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
    Column("member_id", Integer, ForeignKey("class_members.id", ondelete="CASCADE"), nullable=False),
    Column("submitted", Float, nullable=False),
    Column("architecture", Text, nullable=False),  # its label, "784-32-10 relu"
    Column("parameters", Integer, nullable=False),
    Column("family", String(3), nullable=False),
    Column("public", Float, nullable=False),  # accuracy on the public part
    Column("shown", Float, nullable=False),  # what the board shows (the Ladder's)
    Column("private", Float, nullable=False),  # never shown before the class is closed
    Column("model", LargeBinary, nullable=False),  # the .safetensors file
    Column("removed", Float),  # when the teacher removed it (it still counts against the limit)
    Index("class_submissions_member", "member_id", "submitted"),
    Index("class_submissions_class", "class_id"),
)


# -- what the store gives ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NewClass:
    code: str  # to share with the students
    name: str
    key: str  # the teacher's: shown once, stored only as a hash

    def __repr__(self) -> str:  # never printed by accident in a log
        return f"NewClass(code={self.code!r}, name={self.name!r}, key=***)"


@dataclass(frozen=True)
class ClassInfo:
    code: str
    name: str
    created: datetime
    closed: datetime | None
    challenge: Challenge | None
    members: int


@dataclass(frozen=True)
class Receipt:
    """A stored submission, as its student sees it: the public score shown (the Ladder's, if the
    challenge has one), whether it raised the student's best shown score, and, when the handle has
    just joined, its secret (shown once)."""

    id: int
    handle: str
    shown: float
    best: float  # the student's best shown score now
    improved: bool
    submitted: datetime
    left: int  # submissions left in the current hour
    secret: str | None = None

    def __repr__(self) -> str:
        return (f"Receipt(id={self.id}, handle={self.handle!r}, shown={self.shown:.4f}, "
                f"secret={'***' if self.secret else None})")


@dataclass(frozen=True)
class Standing:
    """One student on the board: public rank by their best shown score (ties: who reached it first);
    once the class is closed, their final rank by the private score of that same submission, and how
    far they moved (positive: up)."""

    rank: int
    handle: str
    public: float
    submissions: int
    submission_id: int
    architecture: str
    parameters: int
    private: float | None = None
    final_rank: int | None = None
    moved: int | None = None


@dataclass(frozen=True)
class Board:
    code: str
    name: str
    challenge: Challenge | None
    closed: bool  # the private scores are revealed
    standings: tuple[Standing, ...]

    def final(self) -> tuple[Standing, ...]:
        """The standings in their final order (by private score), once the class is closed."""
        return tuple(sorted(self.standings, key=lambda s: s.final_rank)) if self.closed else ()


@dataclass(frozen=True)
class Member:
    handle: str
    joined: datetime
    submissions: int
    best: float | None  # best shown public score
    best_parameters: int | None  # the parameters of the network that scored it
    removed: bool


@dataclass(frozen=True)
class Submission:
    id: int
    handle: str
    submitted: datetime
    architecture: str
    parameters: int
    family: str
    shown: float
    public: float | None  # the exact public score: the teacher's view only
    private: float | None  # once the class is closed
    removed: bool


# -- checking what is typed ----------------------------------------------------------------------------

def check_code(code) -> str:
    """A class code as stored: upper case, spaces and dashes dropped ("k7m-q2p" → "K7MQ2P")."""
    text = str(code).strip().upper().replace("-", "").replace(" ", "")
    if len(text) != CODE_LENGTH or any(c not in ALPHABET for c in text):
        raise ClassError(f"A class code is {CODE_LENGTH} letters and digits (no 0, O, 1, I or L), e.g. "
                         f"K7MQ2P; got {str(code)!r:.40}.")
    return text


def check_handle(handle) -> tuple[str, str]:
    """A handle as shown (NFC, trimmed) and as compared (casefolded), or a ClassError with the rule."""
    text = unicodedata.normalize("NFC", str(handle)).strip()
    if not 1 <= len(text) <= MAX_HANDLE or not text.isprintable():
        raise ClassError(f"{HANDLE_RULE}; got {str(handle)!r:.60}.")
    return text, text.casefold()


def check_class_name(name) -> str:
    text = " ".join(str(name).split())
    if not 1 <= len(text) <= MAX_CLASS_NAME or not text.isprintable():
        raise ClassError(f"A class name is 1 to {MAX_CLASS_NAME} printable characters; "
                         f"got {str(name)!r:.60}.")
    return text


def new_secret(groups: int) -> str:
    """A key or secret to read out or copy: groups of 4 characters of ALPHABET, e.g. "K7MQ-2PXA-BCDE"
    (about 20 bits a group). It never starts with "-", which a command line would take for a flag."""
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(groups))


def _typed(secret) -> str:
    """A key or secret as compared: upper case, dashes and spaces dropped ("k7mq 2pxa" → "K7MQ2PXA")."""
    return "" if secret is None else "".join(str(secret).split()).replace("-", "").upper()


def _hash(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", _typed(secret).encode(), salt, HASH_ITERATIONS)
    return f"pbkdf2_sha256${HASH_ITERATIONS}${salt.hex()}${digest.hex()}"


_DUMMY_HASH = _hash(new_secret(KEY_GROUPS))  # checked against when there is nothing to check


def _matches(given, stored: str) -> bool:
    """`given` hashes to `stored`, compared in constant time."""
    text = _typed(given)
    _, iterations, salt, digest = stored.split("$")
    if not text or len(text) > MAX_SECRET:
        text = "\0"  # hashed all the same: a refusal takes as long as any
    got = hashlib.pbkdf2_hmac("sha256", text.encode("utf-8", "replace"), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(got, bytes.fromhex(digest)) and text != "\0"


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


_FIXED = ("dataset", "budget", "families", "ladder", "seed", "public_fraction")  # once there are submissions


class ClassStore:
    """Classes in one database: every operation a page or the command line needs, each checking the
    code, key, handle or secret it is given. `clock`: Unix seconds now (tests move it)."""

    def __init__(self, url: str | None = None, clock=time.time):
        self.engine = db.engine(url)
        self.clock = clock
        self.sqlite = self.engine.dialect.name == "sqlite"

    # -- transactions --

    @contextlib.contextmanager
    def _writing(self):
        """A write transaction, committed on leaving: on SQLite it holds the database's write lock
        from its start (BEGIN IMMEDIATE), so what it read cannot change before it writes; on
        PostgreSQL the rows it reads with a `lock` are locked until it ends. Keys and secrets are
        checked before one starts: hashing them would hold the lock ~50 ms."""
        try:
            with self.engine.connect() as c:
                if self.sqlite:
                    c.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield c
                    c.commit()
                except BaseException:
                    with contextlib.suppress(Exception):  # the error that ended it is the one to tell
                        c.rollback()
                    raise
        except OperationalError as e:  # locked past the busy timeout, or the server gone
            reason = (str(e.orig).strip().splitlines() or [""])[0] if e.orig else type(e).__name__
            raise ClassError(f"The class database could not be written ({reason}); try again in a "
                             f"moment.") from None

    def _class(self, c, code, lock: str | None = None):
        """The class row of `code` (`lock`: "share" or "update" on PostgreSQL), or a ClassError."""
        query = select(classes).where(classes.c.code == check_code(code))
        if lock:
            query = query.with_for_update(read=lock == "share")
        row = c.execute(query).first()
        if row is None:
            raise ClassError(f"No class has the code {check_code(code)}: check it with your teacher.")
        return row

    def _teacher(self, c, code, key):
        row = self._class(c, code)
        if not _matches(key, row.key_hash):
            raise ClassError(f"That is not the teacher's key of class {row.code}; the key was shown once, "
                             f"when the class was made.")
        return row

    @staticmethod
    def _open(row) -> None:
        if row.closed is not None:
            raise ClassError(f"Class {row.code} was closed on {_when(row.closed):%Y-%m-%d %H:%M} UTC: it "
                             f"takes no more students or submissions.")

    def _challenge(self, c, class_id: int) -> Challenge | None:
        row = c.execute(select(class_challenges).where(class_challenges.c.class_id == class_id)).first()
        if row is None:
            return None
        return Challenge(row.dataset, row.budget, row.families.split(","), row.per_hour, _when(row.ends),
                         row.ladder, row.seed, row.public_fraction)

    def _member(self, c, class_id: int, handle_key: str, lock: bool = False):
        query = select(class_members).where(class_members.c.class_id == class_id,
                                            class_members.c.handle_key == handle_key)
        return c.execute(query.with_for_update() if lock else query).first()

    # -- a teacher's class --

    def create(self, name) -> NewClass:
        """A new class with a fresh code and a teacher's key (returned here only)."""
        name = check_class_name(name)
        key = new_secret(KEY_GROUPS)
        key_hash = _hash(key)
        for _ in range(20):  # 31**6 ≈ 887 million codes: a clash is rare, and retried
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            try:
                with self._writing() as c:
                    c.execute(insert(classes).values(code=code, name=name, key_hash=key_hash,
                                                     created=self.clock()))
                return NewClass(code, name, key)
            except IntegrityError:
                continue
        raise RuntimeError("no free class code after 20 tries")

    def check_key(self, code, key) -> None:
        """Nothing if `key` is the teacher's key of class `code`; a ClassError otherwise."""
        with self.engine.connect() as c:
            self._teacher(c, code, key)

    def info(self, code) -> ClassInfo:
        with self.engine.connect() as c:
            row = self._class(c, code)
            members = c.execute(select(func.count()).select_from(class_members).where(
                class_members.c.class_id == row.id, class_members.c.removed.is_(None))).scalar()
            return ClassInfo(row.code, row.name, _when(row.created), _when(row.closed),
                             self._challenge(c, row.id), members)

    def challenge(self, code) -> Challenge | None:
        """The class's challenge, None before the teacher sets one."""
        return self.info(code).challenge

    def set_challenge(self, code, key, challenge: Challenge) -> Challenge:
        """Sets (or changes) the class's challenge; a seed is drawn unless `challenge` names one. Once
        it has submissions only its limit and end may change."""
        self.check_key(code, key)
        if challenge.ends is not None and challenge.ends.timestamp() <= self.clock():
            raise ClassError(f"The challenge's end, {challenge.ends:%Y-%m-%d %H:%M} UTC, has passed: give "
                             f"a time to come (or close the class to end it now).")
        with self._writing() as c:
            row = self._class(c, code, lock="update")
            self._open(row)
            old = self._challenge(c, row.id)
            if challenge.seed is None:
                challenge = replace(challenge, seed=old.seed if old else secrets.randbelow(2**31))
            if old is not None:
                n = c.execute(select(func.count()).select_from(class_submissions).where(
                    class_submissions.c.class_id == row.id)).scalar()
                if n and any(getattr(old, f) != getattr(challenge, f) for f in _FIXED):
                    raise ClassError(f"The challenge of class {row.code} has {n} submission"
                                     f"{'s' * (n != 1)}: its data set, budget, families and Ladder stay as "
                                     f"they are; only its limit and its end can change.")
            values = dict(dataset=challenge.dataset, budget=challenge.budget,
                          families=",".join(challenge.families), per_hour=challenge.limit,
                          ends=_seconds(challenge.ends), ladder=challenge.ladder, seed=challenge.seed,
                          public_fraction=challenge.public_fraction)
            if old is None:
                c.execute(insert(class_challenges).values(class_id=row.id, **values))
            else:
                c.execute(update(class_challenges).where(class_challenges.c.class_id == row.id)
                          .values(**values))
        return challenge

    def close(self, code, key) -> None:
        """Closes the class: no more students or submissions, and the board shows the private scores."""
        self.check_key(code, key)
        with self._writing() as c:
            row = self._class(c, code, lock="update")
            self._open(row)
            c.execute(update(classes).where(classes.c.id == row.id).values(closed=self.clock()))

    def remove_submission(self, code, key, submission_id) -> None:
        """Takes a submission off the board (it still counts against its student's limit)."""
        self.check_key(code, key)
        with self._writing() as c:
            row = self._class(c, code)
            number = _number(submission_id)
            found = number is not None and c.execute(
                update(class_submissions).where(class_submissions.c.id == number,
                                                class_submissions.c.class_id == row.id,
                                                class_submissions.c.removed.is_(None))
                .values(removed=self.clock())).rowcount == 1
            if not found:
                raise ClassError(f"Class {row.code} has no submission {str(submission_id)!r:.30} on its "
                                 f"board; the teacher's list of submissions gives their numbers.")

    def remove_student(self, code, key, handle) -> None:
        """Removes a student: their submissions leave the board and they can submit no more (their
        handle stays taken)."""
        shown, handle_key = check_handle(handle)
        self.check_key(code, key)
        with self._writing() as c:
            row = self._class(c, code, lock="share")
            done = c.execute(update(class_members).where(
                class_members.c.class_id == row.id, class_members.c.handle_key == handle_key,
                class_members.c.removed.is_(None)).values(removed=self.clock())).rowcount
            if not done:
                raise ClassError(f"Class {row.code} has no student {shown!r} (handles are compared "
                                 f"whatever their case).")

    def members(self, code, key) -> tuple[Member, ...]:
        """Every student who joined, in the order they joined, with their submissions (the teacher's)."""
        with self.engine.connect() as c:
            row = self._teacher(c, code, key)
            people = c.execute(select(class_members).where(class_members.c.class_id == row.id)
                               .order_by(class_members.c.joined, class_members.c.id)).all()
            subs = defaultdict(list)
            for s in c.execute(select(class_submissions.c.member_id, class_submissions.c.shown,
                                      class_submissions.c.parameters, class_submissions.c.submitted)
                               .where(class_submissions.c.class_id == row.id,
                                      class_submissions.c.removed.is_(None))):
                subs[s.member_id].append(s)
        out = []
        for m in people:
            best = _best(subs[m.id])
            out.append(Member(m.handle, _when(m.joined), len(subs[m.id]), best.shown if best else None,
                              best.parameters if best else None, m.removed is not None))
        return tuple(out)

    def submissions(self, code, key=None, handle=None, secret=None) -> tuple[Submission, ...]:
        """Submissions, newest first: all of the class's with the teacher's `key` (exact public scores
        too), or one student's own with their `handle` and `secret`. Private scores once closed."""
        with self.engine.connect() as c:
            if key is not None:
                row, member = self._teacher(c, code, key), None
            else:
                row = self._class(c, code)
                member = self._student(c, row, handle, secret)
            cols = [t for t in class_submissions.c if t.name != "model"]
            query = (select(*cols, class_members.c.handle).join(class_members)
                     .where(class_submissions.c.class_id == row.id)
                     .order_by(class_submissions.c.submitted.desc(), class_submissions.c.id.desc()))
            if member is not None:
                query = query.where(class_submissions.c.member_id == member.id,
                                    class_submissions.c.removed.is_(None))
            rows = c.execute(query).all()
        closed = row.closed is not None
        return tuple(Submission(s.id, s.handle, _when(s.submitted), s.architecture, s.parameters, s.family,
                                s.shown, s.public if key is not None else None,
                                s.private if closed else None, s.removed is not None) for s in rows)

    def model_file(self, code, key, submission_id: int) -> bytes:
        """A submission's .safetensors file (the teacher's: to look at its architecture)."""
        with self.engine.connect() as c:
            row = self._teacher(c, code, key)
            number = _number(submission_id)
            content = None if number is None else c.execute(select(class_submissions.c.model).where(
                class_submissions.c.id == number, class_submissions.c.class_id == row.id)).scalar()
        if content is None:
            raise ClassError(f"Class {row.code} has no submission {str(submission_id)!r:.30}.")
        return bytes(content)

    # -- students --

    def _student(self, c, row, handle, secret):
        """The member row of `handle`, whose secret `secret` must be; a ClassError otherwise."""
        shown, handle_key = check_handle(handle)
        member = self._member(c, row.id, handle_key)
        if not _matches(secret, member.secret_hash if member else _DUMMY_HASH) or member is None:
            raise ClassError(f"{shown!r} and that secret do not match a student of class {row.code}: "
                             f"give the secret you were shown when you joined.")
        if member.removed is not None:
            raise ClassError(f"{member.handle!r} was removed from class {row.code} by the teacher.")
        return member

    def check_student(self, code, handle, secret) -> str:
        """The handle as it joined if `secret` is its secret (and its student was not removed); a
        ClassError otherwise. For a page to sign a student in before they submit."""
        with self.engine.connect() as c:
            return self._student(c, self._class(c, code), handle, secret).handle

    def join(self, code, handle) -> str:
        """Joins class `code` under a new `handle`; its secret (returned here only) is needed for every
        submission under it."""
        shown, handle_key = check_handle(handle)
        secret = new_secret(SECRET_GROUPS)
        secret_hash = _hash(secret)
        try:
            with self._writing() as c:
                row = self._class(c, code, lock="share")
                self._open(row)
                if self._member(c, row.id, handle_key) is not None:
                    raise ClassError(_taken(shown, row.code))
                c.execute(insert(class_members).values(class_id=row.id, handle=shown, handle_key=handle_key,
                                                       secret_hash=secret_hash, joined=self.clock()))
        except IntegrityError:
            raise ClassError(_taken(shown, check_code(code))) from None
        return secret

    def submit(self, code, handle, model, secret=None, test_split=None) -> Receipt:
        """Scores `model` (a `model_files.SavedModel`, or a .safetensors file's bytes) on the class
        challenge's hidden images and stores it, committed before this returns. Without `secret` a new
        `handle` joins the class in the same transaction, and the receipt holds its secret.
        `test_split`: the data set's test split, if the caller holds it (else loaded once)."""
        from mnistlab import model_files

        shown_handle, handle_key = check_handle(handle)
        if isinstance(model, model_files.SavedModel):
            content = model_files.to_bytes(model)
        elif isinstance(model, (bytes, bytearray, memoryview)):
            content = bytes(model)
        else:
            raise TypeError(f"submit takes a SavedModel or a file's bytes, not {type(model).__name__}")
        # everything that can be refused before the network is scored, without holding any lock: who
        # and where first, then the file
        with self.engine.connect() as c:
            row = self._class(c, code)
            self._open(row)
            rules = self._challenge(c, row.id)
            if rules is None:
                raise ClassError(f"Class {row.code} has no challenge yet: the teacher sets it first.")
            if secret is None:
                if self._member(c, row.id, handle_key) is not None:
                    raise ClassError(_taken(shown_handle, row.code))
                member = None
            else:
                member = self._student(c, row, handle, secret)
            self._in_time(rules)
            if member is not None:
                self._within_limit(c, member, rules)
        saved = model_files.from_bytes(content, "The model file")  # what is scored is what is stored
        rules.check_network(saved)
        scores = challenges_.score(saved, rules, test_split)
        secret_made = new_secret(SECRET_GROUPS) if member is None else None
        new_hash = _hash(secret_made) if secret_made else None
        try:
            with self._writing() as c:
                return self._store(c, code, shown_handle, handle_key, member, rules, saved, content,
                                   scores, secret_made, new_hash)
        except IntegrityError:  # the same new handle joined at the same moment
            raise ClassError(_taken(shown_handle, check_code(code))) from None

    def _store(self, c, code, shown_handle, handle_key, member, rules, saved, content, scores: Scores,
               secret_made, new_hash) -> Receipt:
        row = self._class(c, code, lock="share")  # a close waits for this submission, or it sees the close
        self._open(row)
        now_rules = self._challenge(c, row.id)
        if now_rules is None or any(getattr(now_rules, f) != getattr(rules, f) for f in _FIXED):
            raise ClassError("The teacher changed the challenge while your model was scored; "
                             "submit it again.")
        self._in_time(now_rules)
        if member is None:
            if self._member(c, row.id, handle_key) is not None:
                raise ClassError(_taken(shown_handle, row.code))
            member_id = c.execute(insert(class_members).values(
                class_id=row.id, handle=shown_handle, handle_key=handle_key, secret_hash=new_hash,
                joined=self.clock())).inserted_primary_key[0]
        else:
            member_id = member.id
        member = self._member(c, row.id, handle_key, lock=True)  # the limit's lock, one per student
        if member.removed is not None:
            raise ClassError(f"{member.handle!r} was removed from class {row.code} by the teacher.")
        left = self._within_limit(c, member, now_rules)
        earlier = c.execute(select(class_submissions.c.shown, class_submissions.c.submitted).where(
            class_submissions.c.member_id == member_id, class_submissions.c.removed.is_(None))).all()
        before = max((s.shown for s in earlier), default=None)
        shown = challenges_.ladder(before, scores.public, now_rules.ladder)
        now = self.clock()
        arch = saved.network.arch
        number = c.execute(insert(class_submissions).values(
            class_id=row.id, member_id=member_id, submitted=now, architecture=arch.label(),
            parameters=arch.n_parameters, family="cnn" if arch.is_cnn else "mlp", public=scores.public,
            shown=shown, private=scores.private, model=content)).inserted_primary_key[0]
        best = shown if before is None else max(before, shown)
        return Receipt(number, member.handle, shown, best, before is None or shown > before, _when(now),
                       left - 1, secret_made)

    def _in_time(self, rules: Challenge) -> None:
        if rules.ends is not None and self.clock() >= rules.ends.timestamp():
            raise ClassError(f"This challenge ended on {rules.ends:%Y-%m-%d %H:%M} UTC; it takes no more "
                             f"submissions.")

    def _within_limit(self, c, member, rules: Challenge) -> int:
        """How many more submissions `member` may make this hour (at least 1), or a ClassError."""
        now = self.clock()
        times = c.execute(select(class_submissions.c.submitted).where(
            class_submissions.c.member_id == member.id,
            class_submissions.c.submitted > now - challenges_.LIMIT_WINDOW_S)).scalars().all()
        if len(times) >= rules.limit:
            wait = max(1, round((min(times) + challenges_.LIMIT_WINDOW_S - now) / 60))
            raise ClassError(f"{member.handle!r} has made {len(times)} submission{'s' * (len(times) != 1)} "
                             f"in the last hour; this challenge allows {rules.limit} an hour: the next one "
                             f"is possible in about {wait} minute{'s' * (wait != 1)}.")
        return rules.limit - len(times)

    # -- the board --

    def board(self, code, key=None) -> Board:
        """The class's board, for whoever has its code: each student's best shown public score, ranked;
        once the class is closed, the private scores, the final order and each rank's move. A `key`,
        if given, must be the teacher's."""
        with self.engine.connect() as c:
            row = self._teacher(c, code, key) if key is not None else self._class(c, code)
            rules = self._challenge(c, row.id)
            rows = c.execute(
                select(class_submissions.c.id, class_submissions.c.member_id, class_submissions.c.shown,
                       class_submissions.c.private, class_submissions.c.submitted,
                       class_submissions.c.architecture, class_submissions.c.parameters,
                       class_members.c.handle)
                .join(class_members)
                .where(class_submissions.c.class_id == row.id, class_submissions.c.removed.is_(None),
                       class_members.c.removed.is_(None))).all()
        closed = row.closed is not None
        by_member = defaultdict(list)
        for s in rows:
            by_member[s.member_id].append(s)
        entries = [(_best(subs), len(subs)) for subs in by_member.values()]
        entries.sort(key=lambda e: (-e[0].shown, e[0].submitted, e[0].id))
        public_rank = {e[0].id: i for i, e in enumerate(entries, 1)}
        final_rank = {}
        if closed:
            final = sorted(entries, key=lambda e: (-e[0].private, public_rank[e[0].id]))
            final_rank = {e[0].id: i for i, e in enumerate(final, 1)}
        standings = []
        for best, n in entries:
            rank = public_rank[best.id]
            extra = (dict(private=best.private, final_rank=final_rank[best.id],
                          moved=rank - final_rank[best.id]) if closed else {})
            standings.append(Standing(rank, best.handle, best.shown, n, best.id, best.architecture,
                                      best.parameters, **extra))
        return Board(row.code, row.name, rules, closed, tuple(standings))


def _number(text) -> int | None:
    """A submission's number as typed, or None."""
    try:
        number = int(str(text).strip())
    except ValueError:
        return None
    return number if 0 < number < 2**62 else None


def _best(subs):
    """The submission that set a student's best shown score: the highest, the earliest of equals."""
    return min(subs, key=lambda s: (-s.shown, s.submitted, getattr(s, "id", 0)), default=None)


def _taken(handle: str, code: str) -> str:
    return (f"The handle {handle!r} is taken in class {code}: give its secret to submit under it, or choose "
            f"another ({HANDLE_RULE[0].lower()}{HANDLE_RULE[1:]}).")

