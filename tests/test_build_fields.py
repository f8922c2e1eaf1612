"""A bad value typed into any of Build's number fields is told right there, with what is allowed;
the page never goes on quietly with the old network."""

import pytest
from streamlit.testing.v1 import AppTest

from mnistlab.network import MAX_SEED, MAX_WIDTH

APP = "../app.py"
pytestmark = pytest.mark.usefixtures("navigation_mode")  # see tests/conftest.py


def open_build() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/build.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors_in_column_with(at: AppTest, label: str) -> list[str]:
    """The errors in the innermost column holding the widget labelled `label`."""
    columns = [c for c in at.columns if any(getattr(w, "label", None) == label for w in c.children.values())]
    assert columns, f"no column holds {label!r}"
    return [e.value for e in columns[-1].error]


def controls(at: AppTest):
    """Build's left column: the layers, the init and the seed."""
    return next(c for c in at.columns if any(s.value == "Hidden layers" for s in c.subheader))


def test_a_layer_of_0_units_is_told_under_the_layers_with_the_allowed_sizes():
    at = open_build()
    at.number_input(key="b_size_0").set_value(0).run()
    assert not at.exception
    assert [e.value for e in controls(at).error] == [
        f"Hidden layer 1 size must be from 1 to {MAX_WIDTH:,}; got 0."]
    assert not any("Linear(" in c.value for c in at.code), "the old network is still shown as if built"

    at.number_input(key="b_size_0").set_value(MAX_WIDTH + 1).run()
    assert [e.value for e in controls(at).error] == [
        f"Hidden layer 1 size must be from 1 to {MAX_WIDTH:,}; got {MAX_WIDTH + 1}."]

    at.number_input(key="b_size_0").set_value(300).run()
    assert not at.error
    assert "Linear(in_features=784, out_features=300, bias=True)" in at.code[0].value


def test_a_negative_seed_is_told_under_the_seed():
    at = open_build()
    at.number_input(key="b_seed").set_value(-1).run()
    assert errors_in_column_with(at, "Seed") == [
        f"Seed must be a whole number from 0 to {MAX_SEED:,}; got -1."]
    assert not any("Linear(" in c.value for c in at.code)


def test_a_test_image_past_the_last_is_told_under_its_field():
    at = open_build()
    at.session_state["b_tab"] = "Forward pass"
    at.run()
    at.number_input(key="b_image").set_value(5_000).run()  # the first hidden one: never shown
    label = "Test image (0 to 4,999)"
    allowed = "The test image must be a whole number from 0 to 4,999"
    hidden = "Test images 5,000 to 9,999 are kept hidden for class challenges"
    assert [e.split(". ")[0] for e in errors_in_column_with(at, label)] == [f"{allowed}; got 5000"]
    assert hidden in errors_in_column_with(at, label)[0]
    at.number_input(key="b_image").set_value(12.5).run()
    assert errors_in_column_with(at, label)[0].startswith(f"{allowed}; got 12.5.")
    at.number_input(key="b_image").set_value(4_999).run()
    assert not at.error and at.get("plotly_chart")


def test_a_fraction_is_refused_never_cut_to_a_whole_number():
    """Streamlit's whole-number field made "12.5" 12 and "1e3" 1 (the browser's parseInt)."""
    at = open_build()
    at.number_input(key="b_size_0").set_value(12.5).run()
    assert [e.value for e in controls(at).error] == [
        f"Hidden layer 1 size must be a whole number from 1 to {MAX_WIDTH:,}; got '12.5'."]
    at.number_input(key="b_size_0").set_value(1e3).run()  # what the field reads "1e3" as
    assert not at.error and "Linear(in_features=784, out_features=1000, bias=True)" in at.code[0].value
    at.number_input(key="b_seed").set_value(2.5).run()
    assert errors_in_column_with(at, "Seed") == [
        f"Seed must be a whole number from 0 to {MAX_SEED:,}; got 2.5."]


def test_a_dropout_is_kept_as_typed():
    at = open_build()
    at.number_input(key="b_drop_0").set_value(0.1234).run()
    assert "(dropout1): Dropout(p=0.1234, inplace=False)" in at.code[0].value
