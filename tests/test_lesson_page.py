"""The Lesson page through Streamlit's AppTest, on real MNIST: every step, Previous/Next, values,
presenter mode and the link to Build."""

import copy
from urllib.parse import parse_qsl

import pytest
from streamlit.testing.v1 import AppTest

from mnistlab import lesson, lesson_validation, share
from mnistlab.lesson_step import DEFAULT, LessonValues

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py
TIMEOUT = 60


def open_lesson(query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query_params or {})
    at.run()
    at.switch_page("pages/lesson.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_step(at: AppTest) -> int:
    return int(at.header[0].value.split(".")[0])


def texts(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


@pytest.mark.parametrize("number", range(1, 15))
def test_every_step_renders_its_code_then_what_it_printed(number):
    at = open_lesson({"step": str(number)})
    step = lesson.step(number)
    assert at.header[0].value == f"{number}. {step.title}" and not at.error and not at.warning
    assert texts(at)[0] == step.source()
    output = lesson.run(upto=number)[-1]
    if output.text:
        assert texts(at)[1] == output.text
    assert len(at.get("plotly_chart")) == (output.figure is not None) + (output.picture is not None)
    assert at.query_params["step"] == [str(number)] or at.query_params["step"] == str(number)


def test_a_missing_step_is_step_1_without_a_notice_and_a_bad_one_is_step_1_with_one():
    at = open_lesson()
    assert shown_step(at) == 1 and not at.warning
    assert all(i.value.startswith("**Changed since the 2018 lesson.**") for i in at.info)  # no notice
    assert [b.proto.label for b in at.get("download_button")] == ["Jupyter notebook"]
    at = open_lesson({"step": "42"})
    assert shown_step(at) == 1 and "steps are 1 to 14" in at.warning[0].value
    assert dict(at.query_params)["step"] in ("1", ["1"])


def test_previous_and_next_walk_the_steps_and_keep_the_address_in_step():
    at = open_lesson({"step": "13"})
    at.button(key="l_next_top").click().run()
    assert shown_step(at) == 14 and at.button(key="l_next_top").disabled
    assert at.query_params["step"] in ("14", ["14"])
    at.button(key="l_prev_bottom").click().run()
    at.button(key="l_prev_top").click().run()
    assert shown_step(at) == 12
    at.selectbox(key="l_jump").set_value(2).run()
    assert shown_step(at) == 2 and "torch.Size([64, 1, 28, 28])" in texts(at)[1]


@pytest.mark.parametrize("step, key, typed, says", [
    ("5", "l_units", -3, "Hidden units must be a whole number from 1 to 2,048; got -3. The steps still "
                         "use 256."),
    ("5", "l_units", 12.5, "Hidden units must be a whole number from 1 to 2,048; got 12.5. The steps still "
                           "use 256."),
    ("11", "l_fc2", 5000, "fc2 units must be a whole number from 1 to 2,048; got 5000. The steps still "
                          "use 64."),
    ("1", "l_seed", -1, "Seed must be a whole number from 0 to 2,147,483,647; got -1. The steps still "
                        "use 7."),
])
def test_a_refused_value_is_told_under_its_field_and_the_steps_keep_theirs(step, key, typed, says):
    at = open_lesson({"step": step})
    code = texts(at)[0]
    at.number_input(key=key).set_value(typed).run()
    column = next(c for c in at.columns if any(getattr(w, "key", None) == key for w in c.children.values()))
    assert [e.value for e in column.error] == [says] and len(at.error) == 1
    assert at.number_input(key=key).value == typed  # what was typed, not quietly the old value
    assert texts(at)[0] == code
    at.button(key="l_next_top").click().run()
    at.button(key="l_prev_top").click().run()
    assert not at.error and at.number_input(key=key).value != typed  # moved on: the value in use


def test_a_value_changed_in_place_is_followed_by_the_later_steps_and_kept_in_the_address():
    at = open_lesson({"step": "5"})
    at.number_input(key="l_units").set_value(100).run()
    assert "n_hidden = 100" in texts(at)[0]
    assert at.query_params["units"] in ("100", ["100"])
    at.button(key="l_next_top").click().run()  # step 6: the shapes follow
    assert "W1      torch.Size([784, 100])" in texts(at)[1]
    at.button(key="l_next_top").click().run()
    at.button(key="l_next_top").click().run()  # step 8: the class follows
    assert "(hidden): Linear(in_features=784, out_features=100, bias=True)" in texts(at)[1]

    again = open_lesson(dict((k, v if isinstance(v, str) else v[-1]) for k, v in at.query_params.items()))
    assert texts(again) == texts(at)  # a refresh, or the link on a second screen


def test_a_link_with_bad_values_falls_back_with_a_notice():
    at = open_lesson({"step": "11", "layers": "128,x", "seed": "3"})
    assert "layers '128,x' was not used" in at.warning[0].value
    assert "torch.manual_seed(3)" in texts(at)[0] and "nn.Linear(784, 128)" in texts(at)[0]


def test_presenter_mode_hides_the_editing_widgets_and_keeps_previous_next():
    at = open_lesson({"step": "5", "present": "1"})
    assert not at.number_input and not at.slider and not at.toggle and not at.title
    assert not at.get("download_button") and not at.get("page_link")
    labels = [b.label for b in at.button]
    assert labels.count("Previous") == 2 and labels.count("Next") == 2
    assert texts(at)[0] == lesson.step(5).source()
    at.button(key="l_next_top").click().run()
    assert shown_step(at) == 6 and at.query_params["present"] in ("1", ["1"])
    at.button(key="l_leave").click().run()
    assert "present" not in at.query_params and at.number_input is not None and at.toggle


def test_the_presenter_toggle_turns_presenter_mode_on():
    at = open_lesson({"step": "3"})
    at.toggle(key="l_present_toggle").set_value(True).run()
    assert at.query_params["present"] in ("1", ["1"]) and not at.slider


@pytest.mark.parametrize("number, network", [(8, "sigmoid_network"), (14, "relu_network")])
def test_open_this_network_on_build_carries_the_network_and_seed(number, network):
    at = open_lesson({"step": str(number), "units": "64", "seed": "5"})
    link = at.get("page_link")[0].proto
    params = dict(parse_qsl(link.query_string))
    assert link.page == "build"
    state, notices = share.decode(params)
    assert not notices and state == getattr(LessonValues(n_hidden=64, seed=5), network)()

    build = AppTest.from_file(APP, default_timeout=TIMEOUT)
    build.query_params.update(params)
    build.run()
    build.switch_page("pages/build.py").run()
    assert not build.exception and build.number_input(key="b_seed").value == 5
    if number == 8:
        assert "(fc1): Linear(in_features=784, out_features=64, bias=True)" in build.code[0].value


# -- part 2: validation and overfitting ------------------------------------------------------------

@pytest.fixture(scope="module")
def part_2_outputs(lesson_part):
    return lesson_part(2)  # on one thread, as the app's server (lab_ui), so the same losses are printed


@pytest.fixture
def page_reads_part_2(part_2_outputs, monkeypatch):
    """The page's part 2 is the session's run (the same values, one thread), so that it does not train
    its networks again (about 20 s): these tests are about what the page shows of it. Any other part
    or values reach the real `lesson.run`."""
    real = lesson.run

    def shared(values=DEFAULT, upto=None, part=1):
        if part == 2 and values == DEFAULT and upto is None:
            return [copy.copy(o) for o in part_2_outputs]  # the page empties the last one's namespace
        return real(values, upto, part)

    monkeypatch.setattr(lesson, "run", shared)


@pytest.mark.usefixtures("page_reads_part_2")
@pytest.mark.parametrize("number", range(1, len(lesson_validation.STEPS) + 1))
def test_every_part_2_step_renders_its_code_then_what_it_printed(number, part_2_outputs):
    at = open_lesson({"part": "2", "step": str(number)})
    step = lesson.step(number, part=2)
    assert at.header[0].value == f"{number}. {step.title}" and not at.error and not at.warning
    assert texts(at)[0] == step.source()
    output = part_2_outputs[number - 1]
    assert texts(at)[1] == output.text
    assert len(at.get("plotly_chart")) == (output.figure is not None)
    assert at.query_params["part"] in ("2", ["2"]) and at.query_params["step"] in (str(number), [str(number)])
    assert at.radio(key="l_part_choice").value == 2


@pytest.mark.usefixtures("page_reads_part_2")
def test_the_part_choice_opens_part_2_at_its_first_step_and_old_links_stay_in_part_1():
    at = open_lesson({"step": "5"})  # a link from before part 2
    assert at.header[0].value == f"5. {lesson.step(5).title}" and "part" not in at.query_params
    assert at.radio(key="l_part_choice").options == ["Part 1: Neural networks in PyTorch",
                                                     "Part 2: Validation and overfitting",
                                                     "Part 3: Convolutions"]
    at.radio(key="l_part_choice").set_value(2).run()
    assert at.header[0].value == "1. Training, validation and test sets"
    assert at.query_params["part"] in ("2", ["2"]) and at.query_params["step"] in ("1", ["1"])
    assert [o for o in at.selectbox(key="l_jump").options][-1] == f"14. {lesson.step(14, part=2).title}"
    at.button(key="l_next_top").click().run()
    assert shown_step(at) == 2 and at.query_params["part"] in ("2", ["2"])
    at.radio(key="l_part_choice").set_value(1).run()
    assert at.header[0].value == f"1. {lesson.step(1).title}" and "part" not in at.query_params


def test_a_bad_part_in_a_link_is_part_1_with_a_notice():
    at = open_lesson({"part": "7", "step": "3"})
    assert at.header[0].value == f"3. {lesson.step(3).title}"
    assert "parts are 1 to 3" in at.warning[0].value


@pytest.mark.usefixtures("page_reads_part_2")
def test_part_2_in_presenter_mode_keeps_the_part_in_the_address():
    at = open_lesson({"part": "2", "step": "6", "present": "1"})
    assert not at.main.radio and not at.get("download_button")
    at.button(key="l_next_top").click().run()
    assert shown_step(at) == 7 and at.query_params["part"] in ("2", ["2"])
    assert at.query_params["present"] in ("1", ["1"]) and len(at.get("plotly_chart")) == 1
