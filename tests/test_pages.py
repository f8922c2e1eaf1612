"""Every page through Streamlit's AppTest, on real MNIST: what a visitor sees, and that it reacts."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = "../app.py"
TIMEOUT = 60  # the first run of a test loads MNIST from disk


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(page: str | None = None, query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query_params or {})
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def code_text(at: AppTest) -> str:
    return "\n".join(c.value for c in at.code)


# -- Dataset --------------------------------------------------------------------------------------

def test_dataset_shows_the_lessons_shapes():
    at = open_page("pages/dataset.py")
    text = code_text(at)
    assert "torch.Size([64, 1, 28, 28])" in text
    assert "torch.Size([64])" in text and "torch.Size([64, 784])" in text
    assert not at.error


def test_dataset_next_batch_and_batch_size():
    at = open_page("pages/dataset.py")
    assert at.subheader[0].value.startswith("Batch 1 of 938")
    at.button[0].click().run()
    assert at.subheader[0].value.startswith("Batch 2 of 938")
    at.number_input(key="ds_batch_size").set_value(100).run()
    assert "torch.Size([100, 1, 28, 28])" in code_text(at)
    assert at.subheader[0].value.startswith("Batch 1 of 600")
