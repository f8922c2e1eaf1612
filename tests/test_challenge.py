"""A class challenge: scored on the last 5,000 MNIST test images, a third public and shown at once, the
rest private until the class is closed; its rules refused each with its own sentence; the Ladder;
and fifty students submitting at once, on SQLite and on PostgreSQL (`db_url`)."""

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from mnistlab import challenge, classes, db, model_files, network
from mnistlab.challenge import Challenge, hidden_indices, ladder, split_hidden
from mnistlab.errors import ClassError, LabError
from tests.classroom import Clock, new_class


def oracle_accuracy(saved, test_split, indices) -> float:
    """The network's accuracy on the test images at `indices`, computed here: the lesson's
    Normalize((0.5,), (0.5,)) by hand, one batch, argmax against the labels."""
    x = (test_split.images[indices].float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        scores = saved.model()(x.unsqueeze(1) if saved.network.arch.is_cnn else x.flatten(1))
    return (scores.argmax(1) == test_split.labels[indices]).double().mean().item()


def test_the_hidden_images_are_the_last_5000_test_images_split_a_third_public():
    assert torch.equal(hidden_indices("mnist"), torch.arange(5000, 10000))
    assert torch.equal(hidden_indices("fashion"), torch.arange(5000, 10000))
    public, private = split_hidden("mnist", seed=7)
    assert (len(public), len(private)) == (1667, 3333)
    assert torch.equal(torch.cat([public, private]).sort().values, torch.arange(5000, 10000))
    assert torch.equal(public, public.sort().values)
    again, _ = split_hidden("mnist", seed=7)
    other, _ = split_hidden("mnist", seed=8)
    assert torch.equal(public, again) and not torch.equal(public, other)  # the seed decides
    assert len(split_hidden("mnist", 7, public_fraction=0.5)[0]) == 2500


def test_the_public_score_is_the_accuracy_on_exactly_the_public_images(db_url, class_models, test_split):
    store, made = new_class(db_url, families="mlp,cnn", limit=10)
    public, private = split_hidden("mnist", seed=7)
    receipts = {}
    for name in ("mlp", "cnn"):
        receipts[name] = receipt = store.submit(made.code, name, class_models[name], test_split=test_split)
        expected = oracle_accuracy(class_models[name], test_split, public)
        assert receipt.shown == pytest.approx(expected, abs=1e-7)
        assert receipt.shown * 1667 == pytest.approx(round(receipt.shown * 1667), abs=1e-3)  # right of 1,667
    # from the file's bytes too, the test split loaded by the store itself
    again = store.submit(made.code, "mlp", model_files.to_bytes(class_models["mlp"]), receipts["mlp"].secret)
    assert again.shown == pytest.approx(oracle_accuracy(class_models["mlp"], test_split, public), abs=1e-7)


def test_the_private_score_is_hidden_until_the_class_is_closed(db_url, class_models, test_split):
    store, made = new_class(db_url, limit=10)
    public, private = split_hidden("mnist", seed=7)
    ada = store.submit(made.code, "ada", class_models["mlp"], test_split=test_split)
    bob = store.submit(made.code, "bob", class_models["mlp2"], test_split=test_split)
    assert not hasattr(ada, "private")
    assert all(s.private is None and s.final_rank is None for s in store.board(made.code).standings)
    assert all(s.private is None for s in store.submissions(made.code, made.key))  # the teacher's too
    assert all(s.private is None for s in store.submissions(made.code, handle="ada", secret=ada.secret))
    assert store.board(made.code, key=made.key).final() == ()
    store.close(made.code, made.key)
    board = store.board(made.code)
    by_handle = {s.handle: s for s in board.standings}
    for handle, name in (("ada", "mlp"), ("bob", "mlp2")):
        assert by_handle[handle].private == pytest.approx(
            oracle_accuracy(class_models[name], test_split, private), abs=1e-7)
    final = board.final()
    assert [s.final_rank for s in final] == [1, 2]
    assert final[0].private >= final[1].private
    assert all(s.moved == s.rank - s.final_rank for s in board.standings)
    assert {s.id for s in store.submissions(made.code, made.key)} == {ada.id, bob.id}
    assert all(s.private is not None for s in store.submissions(made.code, made.key))


def test_the_final_order_shows_how_each_rank_moved(db_url, class_models, test_split):
    """Three students; their private scores set so that the public leader falls to last."""
    clock = Clock()
    store, made = new_class(db_url, clock=clock)
    receipts = {}
    for handle in ("ada", "bob", "cy"):
        receipts[handle] = store.submit(made.code, handle, class_models["mlp"], test_split=test_split)
        clock.advance(60)  # equal public scores: who reached it first ranks higher
    assert [s.handle for s in store.board(made.code).standings] == ["ada", "bob", "cy"]
    with db.engine(db_url).begin() as c:
        for handle, private in (("ada", 0.5), ("bob", 0.7), ("cy", 0.9)):
            c.execute(update(classes.class_submissions)
                      .where(classes.class_submissions.c.id == receipts[handle].id).values(private=private))
    store.close(made.code, made.key)
    board = store.board(made.code, key=made.key)
    assert [(s.handle, s.rank, s.final_rank, s.moved) for s in board.standings] == [
        ("ada", 1, 3, -2), ("bob", 2, 2, 0), ("cy", 3, 1, 2)]
    assert [s.handle for s in board.final()] == ["cy", "bob", "ada"]


def test_the_ladder_shows_a_score_only_when_it_beats_the_best_shown_by_a_step():
    assert ladder(None, 0.8437, None) == 0.8437  # no Ladder: every score as it is
    assert ladder(0.9, 0.8437, None) == 0.8437
    assert ladder(None, 0.8437, 1) == 0.84  # the first: rounded to the step
    assert ladder(0.84, 0.8499, 1) == 0.84  # not a step better: the best shown stays
    assert ladder(0.84, 0.5, 1) == 0.84
    assert ladder(0.84, 0.85, 1) == 0.85
    assert ladder(0.84, 0.8671, 1) == 0.87
    assert ladder(None, 0.8437, 0.5) == 0.845
    assert ladder(0.845, 0.8549, 0.5) == 0.855
    assert ladder(0.845, 0.8499, 0.5) == 0.845


def test_the_ladder_on_a_board(db_url, class_models, test_split):
    store, made = new_class(db_url, ladder=1, limit=10)
    public, _ = split_hidden("mnist", seed=7)
    good, weak = (oracle_accuracy(class_models[n], test_split, public) for n in ("mlp", "mlp2"))
    assert good - weak > 0.02  # the networks are far enough apart for this test
    first = store.submit(made.code, "ada", class_models["mlp2"], test_split=test_split)
    assert first.shown == round(weak, 2) and first.improved
    better = store.submit(made.code, "ada", class_models["mlp"], secret=first.secret, test_split=test_split)
    assert better.shown == round(good, 2) and better.improved
    same = store.submit(made.code, "ada", class_models["mlp"], secret=first.secret, test_split=test_split)
    assert same.shown == better.shown and not same.improved and same.best == better.shown
    worse = store.submit(made.code, "ada", class_models["mlp2"], secret=first.secret, test_split=test_split)
    assert worse.shown == better.shown and not worse.improved
    assert store.board(made.code).standings[0].public == round(good, 2)
    exact = {s.id: s.public for s in store.submissions(made.code, made.key)}
    assert exact[worse.id] == pytest.approx(weak, abs=1e-7)  # the teacher sees the exact score


REFUSALS = [
    ("big", {}, "This model has 109,386 parameters; this challenge allows at most 50,000: use fewer or "
                "narrower layers."),
    ("fashion", {}, "This model learned Fashion-MNIST; this challenge is on MNIST: train on MNIST and submit "
                    "again."),
    ("cnn", {}, "This model is a CNN; this challenge allows MLP only."),
    ("mlp", {"families": "cnn"}, "This model is an MLP; this challenge allows CNN only."),
    ("mlp", {"budget": 1000}, "This model has 12,730 parameters; this challenge allows at most 1,000"),
]


@pytest.mark.parametrize("name, rules, told", REFUSALS)
def test_a_network_the_challenge_does_not_allow_is_refused_with_what_it_allows(db_url, class_models, name,
                                                                                 rules, told):
    store, made = new_class(db_url, **rules)
    with pytest.raises(ClassError) as e:
        store.submit(made.code, "ada", class_models[name])
    assert str(e.value).startswith(told)
    assert store.members(made.code, made.key) == ()  # refused before the handle joined


def test_a_network_in_memory_is_checked_as_its_file_would_be(db_url, class_models):
    store, made = new_class(db_url)
    good = class_models["mlp"]
    nan_bias = {**good.state, "fc1.bias": good.state["fc1.bias"] * torch.nan}
    broken = model_files.SavedModel(good.network, nan_bias, good.config)
    with pytest.raises(LabError, match="holds weights that are not numbers"):
        store.submit(made.code, "ada", broken)
    assert store.members(made.code, made.key) == ()


def test_the_limit_is_per_student_per_hour(db_url, class_models, test_split):
    clock = Clock()
    store, made = new_class(db_url, clock=clock, limit=2)
    ada = store.submit(made.code, "ada", class_models["mlp"], test_split=test_split)
    assert ada.left == 1
    clock.advance(600)
    assert store.submit(made.code, "ada", class_models["mlp"], ada.secret, test_split).left == 0
    with pytest.raises(ClassError, match="'ada' has made 2 submissions in the last hour; this challenge "
                                         "allows 2 an hour: the next one is possible in about 50 minutes"):
        store.submit(made.code, "ada", class_models["mlp"], ada.secret, test_split)
    assert store.submit(made.code, "bob", class_models["mlp"], test_split=test_split)  # bob's own limit
    clock.advance(3000)  # the first is an hour old
    assert store.submit(made.code, "ada", class_models["mlp"], ada.secret, test_split).left == 0
    assert len(store.submissions(made.code, made.key)) == 4


def test_no_submission_after_the_end_or_before_a_challenge(db_url, class_models, test_split):
    clock = Clock()
    store, made = new_class(db_url, clock=clock, ends=datetime.fromtimestamp(clock.now + 600, UTC))
    assert store.submit(made.code, "ada", class_models["mlp"], test_split=test_split)
    clock.advance(600)
    with pytest.raises(ClassError, match=r"This challenge ended on 2027-01-15 08:\d\d UTC; it takes no more"):
        store.submit(made.code, "bob", class_models["mlp"], test_split=test_split)
    plain = store.create("no challenge")
    with pytest.raises(ClassError, match=f"Class {plain.code} has no challenge yet: the teacher sets it"):
        store.submit(plain.code, "ada", class_models["mlp"])
    # the teacher can move the end, and the limit, once there are submissions; not the rest
    later = datetime.fromtimestamp(clock.now + 600, UTC)
    store.set_challenge(made.code, made.key, Challenge(seed=7, ends=later, limit=9))
    assert store.challenge(made.code).ends == later and store.challenge(made.code).limit == 9
    now = datetime.fromtimestamp(clock.now, UTC)
    with pytest.raises(ClassError, match=r"The challenge's end, 2027-01-15 08:10 UTC, has passed: give a"):
        store.set_challenge(made.code, made.key, Challenge(seed=7, ends=now))
    with pytest.raises(ClassError, match="has 1 submission: its data set, budget, families and Ladder stay"):
        store.set_challenge(made.code, made.key, Challenge(seed=7, budget=1000))
    assert store.submit(made.code, "bob", class_models["mlp"], test_split=test_split)


@pytest.mark.parametrize("value, told", [
    (dict(dataset="cifar"), "A challenge's data set is one of mnist, fashion; got 'cifar'."),
    (dict(budget=0), "The parameter budget must be a whole number from 1 to 10,000,000; got '0'."),
    (dict(budget="50k"), "The parameter budget must be a whole number from 1 to 10,000,000; got '50k'."),
    (dict(families="rnn"), "The families allowed are mlp, cnn or mlp,cnn; got 'rnn'."),
    (dict(families=""), "The families allowed are mlp, cnn or mlp,cnn; got ''."),
    (dict(limit=0), "The submission limit must be a whole number from 1 to 1,000 per hour; got '0'."),
    (dict(ladder=11), "The Ladder's step is in percentage points, above 0 and at most 10 (0 or off: no "
                      "Ladder); got '11'."),
    (dict(ladder="nan"), "The Ladder's step is in percentage points"),
    (dict(ends="tomorrow"), "A challenge's end must be a date and time; got 'tomorrow'."),
])
def test_challenge_settings_are_checked(value, told):
    with pytest.raises(ClassError) as e:
        Challenge(**value)
    assert str(e.value).startswith(told)


def test_challenge_settings_read_as_typed():
    rules = Challenge("Fashion", "20000", " cnn , MLP ", "3", None, "0.5", seed=1)
    assert (rules.dataset, rules.budget, rules.families, rules.limit, rules.ladder) == (
        "fashion", 20000, ("mlp", "cnn"), 3, 0.5)
    assert rules.label() == ("Fashion-MNIST, at most 20,000 parameters, MLP or CNN, 3 submissions an hour, "
                             "Ladder step 0.5 points")
    assert Challenge(ladder="off").ladder is None and Challenge(ladder=0).ladder is None


def test_fifty_submissions_at_once_each_stored_once_and_the_limit_holds(db_url, class_models, test_split):
    """Ten students send five each within the same moment, the limit three an hour; and five send a new
    handle at once: every acknowledged submission is stored exactly once, every refusal says why."""
    store, made = new_class(db_url, limit=3)
    handles = [f"student {i}" for i in range(10)]
    secret = {h: store.join(made.code, h) for h in handles}
    content = model_files.to_bytes(class_models["mlp"])
    acknowledged, refused, joined = [], [], []
    start = threading.Barrier(55)

    def send(handle, new=False):
        start.wait()
        try:
            receipt = store.submit(made.code, handle, content, secret=None if new else secret[handle],
                                   test_split=test_split)
            (joined if new else acknowledged).append(receipt)
        except ClassError as e:
            refused.append(str(e))

    threads = [threading.Thread(target=send, args=(handles[i % 10],)) for i in range(50)]
    threads += [threading.Thread(target=send, args=("newcomer", True)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acknowledged) == 30 and len(joined) == 1 and len(refused) == 24
    assert sum("allows 3 an hour" in r for r in refused) == 20
    assert sum("The handle 'newcomer' is taken" in r for r in refused) == 4
    stored = store.submissions(made.code, made.key)
    assert sorted(s.id for s in stored) == sorted(r.id for r in acknowledged + joined)  # each once
    assert Counter(s.handle for s in stored) == {**{h: 3 for h in handles}, "newcomer": 1}
    board = store.board(made.code)
    assert sum(s.submissions for s in board.standings) == 31 and len(board.standings) == 11
    assert sorted(r.left for r in acknowledged) == [0] * 10 + [1] * 10 + [2] * 10


# -- fuzzing -----------------------------------------------------------------------------------------

def _one_sentence(e: Exception) -> None:
    text = str(e)
    assert isinstance(e, LabError) and text and "\n" not in text and "Traceback" not in text


@pytest.mark.fuzz
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dataset=st.one_of(st.sampled_from(["mnist", "fashion", "MNIST"]), st.text(max_size=12)),
       budget=st.one_of(st.integers(-10, 10**8), st.text(max_size=8)),
       families=st.one_of(st.sampled_from(["mlp", "mlp,cnn", "cnn"]), st.text(max_size=10)),
       limit=st.one_of(st.integers(-5, 5000), st.text(max_size=5), st.none()),
       ladder=st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=6), st.booleans()),
       ends=st.one_of(st.none(), st.datetimes(), st.text(max_size=5), st.integers()))
def test_any_challenge_settings_are_taken_or_refused_in_one_sentence(dataset, budget, families, limit,
                                                                     ladder, ends):
    try:
        rules = Challenge(dataset, budget, families, limit, ends, ladder, seed=1)
    except ClassError as e:
        _one_sentence(e)
        return
    assert rules.dataset in ("mnist", "fashion") and 1 <= rules.budget and rules.families
    assert rules.ends is None or rules.ends.tzinfo is not None


@pytest.fixture(scope="module")
def fuzz_class(tmp_path_factory):
    url = db.url(str(tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite"))
    store, made = new_class(url, limit=1000, families="mlp,cnn")
    yield store, made, store.join(made.code, "fuzz")
    db.dispose_all()


@pytest.mark.fuzz
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bytes_submitted_are_scored_or_refused_in_one_sentence(data, fuzz_class, class_models,
                                                                   test_split):
    store, made, secret = fuzz_class
    valid = model_files.to_bytes(class_models["mlp"])
    content = data.draw(st.one_of(
        st.binary(max_size=300),
        st.builds(lambda i, b: valid[:i] + bytes([b]) + valid[i + 1:],  # one byte changed
                  st.integers(0, len(valid) - 1), st.integers(0, 255)),
        st.integers(0, len(valid)).map(lambda n: valid[:n])))  # cut short
    try:
        receipt = store.submit(made.code, "fuzz", content, secret, test_split)
    except LabError as e:
        _one_sentence(e)
        return
    assert 0 <= receipt.shown <= 1


def test_a_network_is_scored_in_eval_mode_without_touching_torch_threads(db_url, class_models, test_split):
    """Dropout 0.5 on: scored in training mode, two scorings of one network would differ."""
    store, made = new_class(db_url, limit=10)
    mlp = class_models["mlp"]
    arch = network.Architecture.parse("16", "relu", dropout="0.5")
    dropped = model_files.SavedModel(network.Network(arch, mlp.network.init, mlp.network.seed), mlp.state,
                                     mlp.config)
    threads = torch.get_num_threads()
    first = store.submit(made.code, "ada", dropped, test_split=test_split)
    again = store.submit(made.code, "ada", dropped, first.secret, test_split)
    plain = store.submit(made.code, "bob", mlp, test_split=test_split)
    assert first.shown == again.shown == plain.shown  # dropout does nothing in eval mode
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("meanwhile, told", [
    (lambda store, made: store.set_challenge(made.code, made.key, Challenge(seed=7, budget=20_000)),
     "The teacher changed the challenge while your model was scored; submit it again."),
    (lambda store, made: store.close(made.code, made.key), "was closed on"),
    (lambda store, made: store.remove_student(made.code, made.key, "ada"), "'ada' was removed from class"),
])
def test_what_the_teacher_does_while_a_network_is_scored_is_respected(db_url, class_models, test_split,
                                                                       monkeypatch, meanwhile, told):
    store, made = new_class(db_url, limit=10)
    secret = store.join(made.code, "ada")
    real = challenge.score

    def slow_score(*args, **kwargs):
        meanwhile(store, made)  # the teacher acts between the checks and the store
        return real(*args, **kwargs)

    monkeypatch.setattr(challenge, "score", slow_score)
    with pytest.raises(ClassError, match=told):
        store.submit(made.code, "ada", class_models["mlp"], secret, test_split)
    assert store.submissions(made.code, made.key) == ()  # nothing stored


def test_a_fashion_challenge_scores_on_fashion_mnists_hidden_images(db_url, class_models):
    from mnistlab import data
    from mnistlab.dataset import FASHION

    fashion_test = data.load_split(False, dataset=FASHION)
    store, made = new_class(db_url, dataset="fashion")
    public, _ = split_hidden("fashion", seed=7)
    receipt = store.submit(made.code, "ada", class_models["fashion"], test_split=fashion_test)
    expected = oracle_accuracy(class_models["fashion"], fashion_test, public)
    assert receipt.shown == pytest.approx(expected, abs=1e-7)
    with pytest.raises(ClassError, match="This model learned MNIST; this challenge is on Fashion-MNIST"):
        store.submit(made.code, "bob", class_models["mlp"], test_split=fashion_test)
