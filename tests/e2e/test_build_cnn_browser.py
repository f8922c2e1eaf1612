"""A CNN built on Build in a real browser: convolutions and pools added with their buttons, the
lesson's shapes, the filters and the feature maps drawn; at a projector's 1280×720 and at 1920×1080."""

import re

import pytest
from playwright.sync_api import expect

from mnistlab.network import Architecture
from tests.e2e.conftest import assert_no_exception, goto_page, open_app, rerun, screenshot, wait_for_app
from tests.e2e.test_pages import choose_opened, figure, printed_model


def click(page, name: str) -> None:
    with rerun(page):
        page.get_by_role("button", name=name, exact=True).click()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_a_cnn_built_with_the_buttons_shows_its_shapes_filters_and_feature_maps(page, base_url, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    open_app(page, base_url)
    goto_page(page, "Build")
    expect(printed_model(page)).to_contain_text("(output): Linear(in_features=64")  # the lesson's MLP first
    assert_no_exception(page)
    screenshot(page, f"build-mlp-{size[0]}")
    for name in ("Convolution", "Pool", "Convolution", "Pool"):
        click(page, name)
    shapes = page.locator('[data-testid="stCode"]').filter(has_text="28, 28) →")
    lesson = ("(64, 1, 28, 28) → (64, 8, 24, 24) → (64, 8, 12, 12) → (64, 16, 8, 8) → (64, 16, 4, 4) → "
              "(64, 256)")  # the lesson's shapes; each kept on one line by no-break spaces
    expect(shapes).to_contain_text(re.compile(re.escape(lesson).replace(",\\ ", ",\\s")))
    arch = Architecture.parse("128,64", "relu", conv="8:5,pool,16:5,pool", pool=False)
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Total parameters")).to_contain_text(
        f"{arch.n_parameters:,}")
    expect(page).to_have_url(re.compile(r"conv=8%3A5%2Cpool%2C16%3A5%2Cpool"))
    assert_no_exception(page)
    screenshot(page, f"build-cnn-{size[0]}")

    page.get_by_role("tab", name="Filters", exact=True).click()
    filters = figure(page, "Untrained filters")
    assert any("conv1" in t for t in filters["texts"]) and any("conv2" in t for t in filters["texts"])
    assert sum(t["type"] == "image" for t in filters["traces"]) == 2  # one picture per layer
    screenshot(page, f"build-cnn-filters-{size[0]}")

    page.get_by_role("tab", name="Feature maps", exact=True).click()
    maps = figure(page, "Untrained: test image 0, label 7")
    assert any("conv1" in t and "pool1" in t for t in maps["texts"])
    assert_no_exception(page)
    screenshot(page, f"build-cnn-feature-maps-{size[0]}")

    click(page, "Convolution")  # 32:5 after 4×4 maps: told beside it, the page stays usable
    expect(page.locator('[data-testid="stAlert"]').filter(
        has_text="Layer 5: a 5×5 kernel does not fit the 4×4 maps after layer 4")).to_be_visible()
    assert_no_exception(page)
    screenshot(page, f"build-cnn-misfit-{size[0]}")


@pytest.mark.parametrize("size", [(1280, 720)])
def test_train_trains_a_linked_cnn_and_shows_its_trained_filters(page, base_url, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    open_app(page, base_url, "build?hidden=32&act=relu&seed=0&conv=8:5,pool,16:5,pool")
    goto_page(page, "Train")
    expect(page.get_by_text("conv 8:5 → pool → conv 16:5 → pool → 256-32-10 relu")).to_be_visible()
    page.get_by_text("Generalization settings").click()
    choose_opened(page, "Training images", "1,000")
    epochs = page.locator('[data-testid="stSlider"]').filter(has_text="Epochs").get_by_role("slider")
    with rerun(page):  # one pass trains its filters: each epoch scores 10,000 validation images
        epochs.focus()
        epochs.press("Home")
    with rerun(page):
        page.get_by_role("button", name="Train", exact=True).click()
    test = page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")
    expect(test.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"%$"), timeout=300_000)
    wait_for_app(page)
    page.get_by_role("tab", name="Weights", exact=True).click()
    filters = figure(page, "Filters after training")
    assert any("conv2" in t for t in filters["texts"])
    expect(page.get_by_role("link", name=re.compile("Open this network on Build"))).to_have_attribute(
        "href", re.compile(r"conv=8%3A5%2Cpool%2C16%3A5%2Cpool"))
    assert_no_exception(page)
    screenshot(page, f"train-cnn-{size[0]}")
