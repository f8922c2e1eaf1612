"""The Explore page through Streamlit's AppTest, on real MNIST: a small sweep from start to a network
on Build."""

import pytest
from streamlit.testing.v1 import AppTest

import visitor
from mnistlab import network, share, stacked, sweep, sweep_db

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py
TIMEOUT = 60
ANN, BEN = "a" * 32, "b" * 32  # two browsers' secrets (visitor.VISITOR), as their cookies would send them


@pytest.fixture(autouse=True)
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS", str(tmp_path))
    return tmp_path


def open_explore(secret: str = ANN, **params) -> AppTest:
    """Explore, for the visitor whose browser keeps `secret`."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[visitor.VISITOR.key] = secret
    at.run()
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("pages/explore.py").run()
    return ok(at)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_sweep(at: AppTest, button: str = "ex_start") -> AppTest:
    """Press Start (or Resume), wait for the sweep, and let the page pick up its results."""
    ok(at.button(key=button).click().run())
    assert at.session_state["ex_sweep"].wait(180)
    ok(at.run())
    assert "ex_sweep" not in at.session_state
    return at


def test_a_small_sweep_from_a_link_trains_shows_its_networks_and_opens_one_on_build():
    at = open_explore(depths="1", widths="16,32", act="relu,tanh", seeds="1", epochs="1")
    assert at.multiselect(key="ex_widths").value == [16, 32]
    assert at.markdown[0].value.startswith("**4 trials** (4 configs × 1 seed), 1 epoch each: about ")
    run_sweep(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 5  # size, time, capacity, heatmap, parallel coordinates
    records = sweep_db.SweepDatabase().records(at.session_state["ex_shown"])
    # one epoch on the 50,000 training images: 84-92% (a 16-unit ReLU layer is the slowest)
    assert len(records) == 4 and all(r["validation_accuracy"] > 0.8 for r in records)
    assert at.query_params["sweep"] == at.session_state["ex_shown"]  # a link to these results
    assert sweep_db.SweepDatabase().owners(at.session_state["ex_shown"]) == {visitor.id_of(ANN): None}
    best = max(records, key=lambda r: r["validation_accuracy"])  # chosen on validation
    choice = at.selectbox(key="ex_open")
    assert len(choice.options) == 4 and choice.value.startswith(best["network"])  # best first
    link = at.get("page_link")[0].proto
    assert link.page.endswith("build") or "build" in link.page
    expected = share.encode(network.Network(
        __import__("mnistlab").network.Architecture(tuple(best["hidden"]), tuple(best["activations"]))))
    assert dict(p.split("=") for p in link.query_string.split("&")) == expected

    at.button(key="ex_train").click().run()  # "Train it fully": the Train page, with this network
    assert at.session_state["build"].network.arch.hidden == tuple(best["hidden"])


def test_bad_settings_on_the_page_say_what_is_allowed_and_cannot_start():
    at = open_explore()
    ok(at.multiselect(key="ex_widths").set_value([]).run())
    assert at.error[0].value == "Widths: give at least one value."
    assert at.button(key="ex_start").disabled
    at.multiselect(key="ex_widths").set_value([8, 16, 32, 64, 128, 256, 512, 1024])
    at.multiselect(key="ex_depths").set_value([1, 2, 3, 4])
    at.multiselect(key="ex_activations").set_value(["sigmoid", "tanh", "relu"])
    ok(at.slider(key="ex_seeds").set_value(5).run())
    assert f"at most {sweep.MAX_TRIALS}" in at.error[0].value and "480 trials" in at.error[0].value
    assert at.button(key="ex_start").disabled


@pytest.mark.parametrize("params, message", [
    ({"widths": "16,abc"}, "Link value widths='16,abc' was not used: A width must be a whole number"),
    ({"seeds": "9"}, "Link value seeds='9' was not used: Seeds per config must be a whole number from 1"),
    ({"act": "softmax"}, "Link value act='softmax' was not used: Activations must be among sigmoid, tanh"),
])
def test_a_link_with_bad_settings_says_what_was_wrong_and_keeps_the_defaults(params, message):
    at = open_explore(**params)
    assert message in at.warning[0].value and len(at.warning) == 1 and not at.error
    assert at.multiselect(key="ex_widths").value == [16, 64, 256]
    assert not any(k in at.query_params for k in params)  # a clean address


def test_a_link_for_a_sweep_not_saved_here_says_so():
    at = open_explore(sweep="not-a-sweep")
    assert "The link asks for sweep 'not-a-sweep', which this server has not saved" in at.error[0].value


def test_a_link_with_several_bad_values_names_each_keeps_the_good_ones_and_cleans_the_address():
    at = open_explore(depths="9", widths="abc", epochs="99", act="tanh")
    assert [w.value for w in at.warning] == [
        "Link value depths='9' was not used: Hidden layers must be a whole number from 0 to 4; got '9'. "
        "Using the default.",
        "Link value widths='abc' was not used: A width must be a whole number from 1 to 2,048; got 'abc'. "
        "Using the default.",
        f"Link value epochs='99' was not used: Epochs per trial must be a whole number from 1 to "
        f"{sweep.MAX_TRIAL_EPOCHS}; got '99'. Using the default."]
    assert at.multiselect(key="ex_activations").value == ["tanh"]  # the good value is kept
    assert at.multiselect(key="ex_widths").value == [16, 64, 256]
    assert {k: v for k, v in at.query_params.items() if k != "data"} in ({"act": "tanh"}, {"act": ["tanh"]})
    ok(at.run())  # the notices stay with the page until a sweep starts
    assert len(at.warning) == 3


def test_a_saved_sweep_reopens_in_a_new_session_and_resumes_only_what_is_missing(models):
    settings = sweep.SweepSettings.of(depths="1", widths="16,32", activations="relu")
    store = sweep_db.SweepDatabase()
    store.add_sweep(settings, visitor.id_of(ANN))
    first = settings.trials()[0]
    trained = stacked.Trained(0.9, 0.3, [0.9] * 10, 0.4, 1.0, 1)
    store.add_trial(settings.id, first.record(trained, "local"))
    at = open_explore()
    assert at.selectbox(key="ex_saved").value == settings.id
    ok(at.button(key="ex_open_saved").click().run())
    assert "1 trained, 1 missing" in at.markdown[1].value
    run_sweep(at, "ex_resume")  # trains the other one only
    records = store.records(settings.id)
    assert len(records) == 2 and records[0]["test_accuracy"] == 0.9  # the first is the one kept


def _figure(at: AppTest, title: str) -> dict:
    from tests.test_app_pages import figure_with
    return figure_with(at, title)


def test_a_sweep_over_dropout_and_training_set_sizes_shows_its_columns_and_the_capacity_picture():
    at = open_explore(depths="1", widths="16,64", act="relu", drop="0,0.5", images="1000,3000", seeds="1",
                      epochs="1")
    assert at.multiselect(key="ex_dropouts").value == [0.0, 0.5]
    assert at.multiselect(key="ex_train_sizes").value == [1000, 3000]
    assert [at.multiselect(key=k).value for k in ("ex_bns", "ex_weight_decays", "ex_label_noises")] == \
        [[False], [0.0], [0.0]]
    assert at.markdown[0].value.startswith("**8 trials** (8 configs × 1 seed)")
    ok(at.multiselect(key="ex_bns").set_value([False, True]).run())
    assert at.markdown[0].value.startswith("**16 trials**")  # the estimate's trials count the new axis
    ok(at.multiselect(key="ex_bns").set_value([False]).run())
    run_sweep(at)
    records = sweep_db.SweepDatabase().records(at.session_state["ex_shown"])
    assert len(records) == 8 and {(r["dropout"], r["train_images"]) for r in records} == \
        {(p, n) for p in (0.0, 0.5) for n in (1000, 3000)}

    table = at.dataframe[0].value
    assert list(table.columns)[:6] == ["network", "training images", "validation (chooses)",
                                       "test (held out, not used to choose)", "train", "best epoch"]
    assert {"dropout", "training images", "parameters"} <= set(table.columns)
    assert list(table["best epoch"]) == [1] * 8
    ranked = list(table["validation (chooses)"])
    assert ranked == sorted(ranked, reverse=True)  # best first by validation
    best = max(records, key=lambda r: r["validation_accuracy"])
    assert table["validation (chooses)"][0] == pytest.approx(best["validation_accuracy"] * 100)
    assert table["test (held out, not used to choose)"][0] == pytest.approx(best["test_accuracy"] * 100)
    assert at.selectbox(key="ex_open").value.startswith(best["network"])

    size = _figure(at, "Validation accuracy against size")
    assert "validation" in size["layout"]["yaxis"]["title"]["text"]
    capacity = _figure(at, "Training and validation accuracy, 1 hidden layer, relu")
    lines = {t["name"]: t for t in capacity["data"]}
    assert set(lines) == {f"{split}, {n:,} training images" for split in ("training", "validation")
                          for n in (1000, 3000)}
    # each point is the network validation chooses among that size's dropouts: its recorded accuracies
    for n in (1000, 3000):
        for width in (16, 64):
            mine = [r for r in records if r["train_images"] == n and r["width"] == width]
            chosen = max(mine, key=lambda r: r["validation_accuracy"])
            i = list(lines[f"training, {n:,} training images"]["x"]).index(chosen["parameters"])
            assert lines[f"training, {n:,} training images"]["y"][i] == \
                pytest.approx(chosen["train_accuracy"] * 100)
            assert lines[f"validation, {n:,} training images"]["y"][i] == \
                pytest.approx(chosen["validation_accuracy"] * 100)
    assert {t["line"]["dash"] for t in capacity["data"]} == {"solid", "dash"}

    # a network with dropout goes to Train with its dropout
    labels = at.selectbox(key="ex_open").options
    ok(at.selectbox(key="ex_open").set_value(next(o for o in labels if "dropout 0.5" in o)).run())
    assert "dropout=0.5" in at.get("page_link")[0].proto.query_string.split("&")  # and to Build's link
    at.button(key="ex_train").click().run()
    assert at.session_state["build"].network.arch.dropout == (0.5,)


def test_each_visitor_lists_only_their_own_sweeps_and_everyones_older_ones_but_a_link_opens_any(models):
    mine, theirs, cli = (sweep.SweepSettings.of(depths="1", widths=w, activations="relu")
                         for w in ("16", "32", "64"))
    store = sweep_db.SweepDatabase()
    store.add_sweep(mine, visitor.id_of(ANN))
    store.add_sweep(theirs, visitor.id_of(BEN))
    store.add_sweep(cli, sweep_db.COMMAND_LINE)
    ann, ben = open_explore(ANN), open_explore(BEN)
    assert ann.selectbox(key="ex_saved").options[0] == f"{mine.label()} (0 done)"
    assert ben.selectbox(key="ex_saved").options[0] == f"{theirs.label()} (0 done)"
    for at in (ann, ben):  # the operator's command-line sweep: everyone's, after their own
        assert at.selectbox(key="ex_saved").options[1:] == [f"Everyone's: {cli.label()} (0 done)"]
    assert any("the sweeps you started in this browser" in c.value for c in ann.caption)

    newcomer = open_explore("c" * 32)  # a browser never seen: only everyone's
    assert newcomer.selectbox(key="ex_saved").options == [f"Everyone's: {cli.label()} (0 done)"]
    linked = open_explore("c" * 32, sweep=theirs.id)  # Ben's link still opens his sweep, as before
    assert linked.session_state["ex_shown"] == theirs.id and not linked.error
    assert any(m.value.endswith(f"**{theirs.label()}** · 0 trained, 1 missing") for m in linked.markdown)


def test_a_new_visitor_gets_a_random_128_bit_id_of_their_own(models):
    first, second = (AppTest.from_file(APP, default_timeout=TIMEOUT) for _ in range(2))
    secrets_ = []
    for at in (first, second):
        ok(at.run())
        secrets_.append(at.session_state[visitor.VISITOR.key])
    assert all(len(s) == 32 and int(s, 16) >= 0 for s in secrets_) and secrets_[0] != secrets_[1]
    assert visitor.id_of(secrets_[0]) != secrets_[0]  # the id saved with a sweep is not the secret


@pytest.mark.parametrize("setting, told", [
    ("mysql://teacher:secret@school/lab", "MNISTLAB_DB names a mysql database; MNIST Lab runs on SQLite"),
    ("postgresql://teacher:secret@127.0.0.1:1/lab", "The app's database (postgresql+psycopg://teacher:***@"
                                                   "127.0.0.1:1/lab) cannot be used: "),
])
def test_a_database_it_cannot_use_is_told_on_explore_and_the_other_pages_still_work(monkeypatch, setting,
                                                                                    told):
    monkeypatch.setenv("MNISTLAB_DB", setting)
    at = open_explore()
    assert len(at.error) == 1 and at.error[0].value.startswith(told), at.error[0].value
    assert "secret" not in at.error[0].value  # the URL's password is never shown
    ok(at.switch_page("pages/build.py").run())
    assert not at.error and at.title[0].value == "Build a network"
