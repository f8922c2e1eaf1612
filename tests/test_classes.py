"""A class of its own: a code to share, a teacher's key shown once and stored as a hash, students
under handles with secrets of their own, and nothing of one class seen from another. Each test runs
on a fresh SQLite file and on a database of a real PostgreSQL server (`db_url`)."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mnistlab import classes, db
from mnistlab.classes import ALPHABET, ClassStore, check_code, check_handle
from mnistlab.errors import ClassError
from tests.classroom import Clock, new_class


def test_a_class_has_a_short_readable_code_and_a_key_shown_once(db_url):
    store = ClassStore(db_url)
    made = store.create("  Year 10   B ")
    assert len(made.code) == 6 and set(made.code) <= set(ALPHABET)
    assert not set(made.code) & set("0O1IL")  # unambiguous on a projector
    assert made.name == "Year 10 B"
    assert made.key not in repr(made)
    info = store.info(made.code.lower())  # typed in lower case, or with a dash
    assert info.code == made.code and info.closed is None and info.challenge is None
    assert store.info(f"{made.code[:3]}-{made.code[3:]}").code == made.code
    store.check_key(made.code, made.key)  # the key works; it is returned nowhere else
    assert re.fullmatch(r"([A-Z2-9]{4}-){4}[A-Z2-9]{4}", made.key)  # never starts with "-", like a flag
    store.check_key(made.code, made.key.lower().replace("-", ""))  # typed as read out
    assert len({store.create("another").code for _ in range(5)} | {made.code}) == 6


def test_keys_and_secrets_are_stored_only_as_salted_hashes(db_url, class_models):
    store, made = new_class(db_url)
    twin = store.create("Year 10 B")  # the same name: another key, another salt
    secret = store.join(made.code, "ada")
    with db.engine(db_url).connect() as c:
        rows = [tuple(r) for r in c.execute(select(classes.classes))]
        rows += [tuple(r) for r in c.execute(select(classes.class_members))]
    text = repr(rows)
    for clear in (made.key, twin.key, secret):
        assert clear not in text
    hashes = [r[3] for r in rows[:2]] + [rows[2][4]]
    assert all(h.startswith("pbkdf2_sha256$") for h in hashes)
    salts = [h.split("$")[2] for h in hashes]
    assert len(set(salts)) == 3  # salted: the same class name never gives the same hash


def test_keys_and_secrets_are_compared_in_constant_time(db_url, monkeypatch):
    store, made = new_class(db_url)
    secret = store.join(made.code, "ada")
    calls = []
    real = classes.hmac.compare_digest
    monkeypatch.setattr(classes.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    store.check_key(made.code, made.key)
    assert store.submissions(made.code, handle="ada", secret=secret) == ()
    with pytest.raises(ClassError):
        store.check_key(made.code, "not the key")
    assert len(calls) == 3


@pytest.mark.parametrize("operation", ["check_key", "members", "close", "set_challenge", "board",
                                       "remove_student", "remove_submission", "submissions"])
def test_a_wrong_key_is_refused_for_every_teacher_operation(db_url, operation):
    store, made = new_class(db_url)
    store.join(made.code, "ada")
    args = {"set_challenge": (classes.Challenge(),), "remove_student": ("ada",), "remove_submission": (1,)}
    call = getattr(store, operation)
    for wrong in ("", "x" * 500, made.key[:-1], made.key.upper() if made.key != made.key.upper() else "k"):
        with pytest.raises(ClassError, match=f"That is not the teacher's key of class {made.code}"):
            if operation in ("board", "submissions"):
                call(made.code, key=wrong)
            else:
                call(made.code, wrong, *args.get(operation, ()))
    assert store.members(made.code, made.key)[0].removed is False  # nothing was done


def test_unknown_and_malformed_codes_are_told_apart(db_url):
    store = ClassStore(db_url)
    with pytest.raises(ClassError, match="No class has the code ABCDEF: check it with your teacher"):
        store.board("abcdef")
    for typed in ("ABC", "ABCDEFG", "ABCDE0", "", "ÄBCDEF"):
        with pytest.raises(ClassError, match=re.escape("A class code is 6 letters and digits (no 0, O, 1, I "
                                                       "or L), e.g. K7MQ2P")):
            store.board(typed)


def test_handles_are_trimmed_short_printable_and_unique_whatever_their_case(db_url):
    store, made = new_class(db_url)
    assert check_handle("  Ada Lovelace ") == ("Ada Lovelace", "ada lovelace")
    store.join(made.code, "  Ada ")
    for same in ("ada", "ADA", " aDa"):
        with pytest.raises(ClassError, match=f"The handle '{same.strip()}' is taken in class {made.code}"):
            store.join(made.code, same)
    rule = re.escape(classes.HANDLE_RULE)
    for bad in ("", "   ", "x" * 25, "tab\there", "new\nline", "\x00"):
        with pytest.raises(ClassError, match=rule):
            store.join(made.code, bad)
    assert store.join(made.code, "ß" * 24)  # 24 characters, whatever their alphabet
    assert [m.handle for m in store.members(made.code, made.key)] == ["Ada", "ß" * 24]


def test_a_secret_guards_each_handle(db_url, class_models):
    store, made = new_class(db_url, limit=10)
    first = store.submit(made.code, "ada", class_models["mlp"])  # a new handle joins
    assert first.secret and first.handle == "ada"
    assert store.submit(made.code, "ADA", class_models["mlp"], secret=first.secret).secret is None
    with pytest.raises(ClassError, match="'ada' and that secret do not match a student of class"):
        store.submit(made.code, "ada", class_models["mlp"], secret="guess")
    with pytest.raises(ClassError, match="The handle 'ada' is taken"):
        store.submit(made.code, "ada", class_models["mlp"])  # no secret: as if joining
    with pytest.raises(ClassError, match="'bob' and that secret do not match"):
        store.submit(made.code, "bob", class_models["mlp"], secret=first.secret)  # not bob's
    assert [s.handle for s in store.submissions(made.code, made.key)] == ["ada", "ada"]
    assert store.check_student(made.code, " ADA", first.secret) == "ada"  # signing in, as a page does
    assert store.check_student(made.code, "ada", first.secret.lower().replace("-", " "))  # as read out
    wrong = first.secret[:-1] + ("A" if first.secret[-1] != "A" else "B")
    with pytest.raises(ClassError, match="do not match a student"):
        store.check_student(made.code, "ada", wrong)


def test_one_class_never_sees_another(db_url, class_models):
    clock = Clock()
    store, a = new_class(db_url, "A", clock)
    b = store.create("B")
    store.set_challenge(b.code, b.key, classes.Challenge(seed=7))
    ada = store.submit(a.code, "ada", class_models["mlp"])
    bob = store.submit(b.code, "bob", class_models["mlp2"])
    ada_in_b = store.submit(b.code, "ada", class_models["mlp2"])  # the same handle, another student
    assert ada_in_b.secret != ada.secret
    assert [s.handle for s in store.board(a.code).standings] == ["ada"]
    assert sorted(s.handle for s in store.board(b.code).standings) == ["ada", "bob"]
    assert [m.handle for m in store.members(a.code, a.key)] == ["ada"]
    assert {s.id for s in store.submissions(a.code, a.key)} == {ada.id}
    with pytest.raises(ClassError, match="not the teacher's key"):
        store.members(a.code, b.key)  # B's key opens B only
    with pytest.raises(ClassError, match=f"Class {a.code} has no submission"):
        store.remove_submission(a.code, a.key, bob.id)  # B's submission, through A
    with pytest.raises(ClassError, match="no student 'bob'"):
        store.remove_student(a.code, a.key, "bob")
    with pytest.raises(ClassError, match=f"Class {a.code} has no submission"):
        store.model_file(a.code, a.key, bob.id)
    with pytest.raises(ClassError, match=f"Class {a.code} has no submission 'x'"):
        store.model_file(a.code, a.key, "x")
    with pytest.raises(ClassError, match="do not match a student"):
        store.submissions(a.code, handle="ada", secret=ada_in_b.secret)  # B's ada is not A's
    store.close(a.code, a.key)
    assert store.board(a.code).closed and not store.board(b.code).closed
    assert store.submit(b.code, "bob", class_models["mlp"], secret=bob.secret)  # B still open


def test_the_teacher_lists_members_and_removes_submissions_and_students(db_url, class_models):
    clock = Clock()
    store, made = new_class(db_url, clock=clock, limit=3)
    ada = store.submit(made.code, "ada", class_models["mlp"])
    clock.advance(10)
    worse = store.submit(made.code, "ada", class_models["mlp2"], secret=ada.secret)
    clock.advance(10)
    bob = store.submit(made.code, "bob", class_models["mlp2"])
    clock.advance(10)
    store.join(made.code, "cy")
    members = {m.handle: m for m in store.members(made.code, made.key)}
    assert list(members) == ["ada", "bob", "cy"]  # in the order they joined
    assert members["ada"].submissions == 2 and members["cy"].submissions == 0 and members["cy"].best is None
    best_ada = max(ada.shown, worse.shown)
    assert members["ada"].best == best_ada
    assert members["ada"].best_parameters == (class_models["mlp"] if ada.shown >= worse.shown
                                              else class_models["mlp2"]).network.arch.n_parameters
    assert members["ada"].joined.timestamp() == pytest.approx(1_800_000_000.0)
    store.remove_submission(made.code, made.key, ada.id)
    assert store.members(made.code, made.key)[0].submissions == 1
    assert store.board(made.code).standings[[s.handle for s in store.board(made.code).standings]
                                             .index("ada")].submission_id == worse.id
    with pytest.raises(ClassError, match="has no submission"):
        store.remove_submission(made.code, made.key, ada.id)  # once
    # a removed submission still counts against the limit: 3 an hour, ada has sent 2
    store.submit(made.code, "ada", class_models["mlp"], secret=ada.secret)
    with pytest.raises(ClassError, match="allows 3 an hour"):
        store.submit(made.code, "ada", class_models["mlp"], secret=ada.secret)
    store.remove_student(made.code, made.key, "BOB")
    assert [s.handle for s in store.board(made.code).standings] == ["ada"]
    assert store.members(made.code, made.key)[1].removed
    with pytest.raises(ClassError, match=f"'bob' was removed from class {made.code} by the teacher"):
        store.submit(made.code, "bob", class_models["mlp"], secret=bob.secret)
    with pytest.raises(ClassError, match="The handle 'bob' is taken"):
        store.join(made.code, "bob")  # the handle stays taken
    with pytest.raises(ClassError, match="no student 'bob'"):
        store.remove_student(made.code, made.key, "bob")  # once
    content = store.model_file(made.code, made.key, bob.id)  # the teacher can read its architecture
    from mnistlab import model_files

    assert model_files.from_bytes(content).network == class_models["mlp2"].network


def test_a_closed_class_takes_no_one_and_nothing_more(db_url, class_models):
    store, made = new_class(db_url)
    ada = store.submit(made.code, "ada", class_models["mlp"])
    store.close(made.code, made.key)
    closed = f"Class {made.code} was closed on"
    for attempt in (lambda: store.join(made.code, "bob"),
                    lambda: store.submit(made.code, "ada", class_models["mlp"], secret=ada.secret),
                    lambda: store.submit(made.code, "bob", class_models["mlp"]),
                    lambda: store.set_challenge(made.code, made.key, classes.Challenge(seed=7)),
                    lambda: store.close(made.code, made.key)):
        with pytest.raises(ClassError, match=closed):
            attempt()
    assert store.info(made.code).closed is not None


# -- fuzzing -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    url = db.url(str(tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite"))
    store, made = new_class(url)
    yield store, made
    db.dispose_all()


def _one_sentence(e: Exception) -> str:
    text = str(e)
    assert isinstance(e, ClassError) and text and "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.fuzz
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.one_of(st.text(max_size=10), st.text(alphabet=ALPHABET + "01OIL- ", min_size=5, max_size=8)),
       handle=st.text(max_size=30), key=st.one_of(st.none(), st.text(max_size=120)))
def test_any_code_handle_or_key_is_taken_or_told_in_one_sentence(fuzz_store, code, handle, key):
    store, made = fuzz_store
    try:
        assert check_code(code) == code.strip().upper().replace("-", "").replace(" ", "")
    except ClassError as e:
        _one_sentence(e)
    try:
        shown, folded = check_handle(handle)
        assert 1 <= len(shown) <= 24 and shown == shown.strip() and folded == shown.casefold()
    except ClassError as e:
        assert classes.HANDLE_RULE in _one_sentence(e)
    for attempt in (lambda: store.board(code), lambda: store.check_key(made.code, key),
                    lambda: store.join(made.code, handle), lambda: store.submissions(made.code, handle=handle,
                                                                                   secret=key)):
        try:
            attempt()
        except ClassError as e:
            _one_sentence(e)


def test_a_training_left_when_its_browser_closed_is_no_longer_shown_as_training_now(db_url):
    """A student who closes the browser mid-training writes no finish (their job stops with them): the
    teacher's board stops calling it "training now" once it is older than any run can be."""
    from mnistlab import class_activity, jobs

    clock = Clock()
    store, made = new_class(db_url, clock=clock)
    ada, ben = store.join(made.code, "ada"), store.join(made.code, "ben")
    class_activity.started(store, made.code, "ada", ada, "784-32-10 relu")
    clock.advance(class_activity.STALE_AFTER_S - 60)
    class_activity.started(store, made.code, "ben", ben, "784-64-10 relu")
    assert class_activity.activity(store, made.code, made.key)["ada"].training == "784-32-10 relu"
    clock.advance(120)  # ada's now older than a run waits and trains; ben's is not
    doing = class_activity.activity(store, made.code, made.key)
    assert doing["ada"].training is None and doing["ben"].training == "784-64-10 relu"
    assert class_activity.STALE_AFTER_S >= 2 * jobs.MAX_RUN_SECONDS
