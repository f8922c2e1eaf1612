"""Page files decorate no caches: `st.cache_resource` and `st.cache_data` belong in page_cache.

A page file is a script Streamlit runs afresh on every rerun of every visitor, and each cache decorator
reads and hashes its function's source when it runs (`inspect.getsource`: about 5% of a classroom
server's time when the pages held them). Decorated in an imported module, they run once per process.
`st.fragment` stays in the pages: a fragment is defined where it runs.
"""

import ast
from pathlib import Path

PAGES = sorted((Path(__file__).parent.parent / "pages").glob("*.py"))
CACHES = {"cache_resource", "cache_data"}


def decorators(path: Path) -> list[tuple[str, int, str]]:
    """Every decorator of every function in a page file, anywhere in it: (function, line, its name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
                found.append((node.name, decorator.lineno, name))
    return found


def test_no_page_file_decorates_a_cache():
    assert PAGES, "the pages are found"
    cached = [f"{path.name}:{line} {function}" for path in PAGES
              for function, line, name in decorators(path) if name in CACHES]
    assert not cached, f"decorated on every rerun; move them to page_cache.py: {cached}"


def test_the_scan_sees_the_pages_fragments():
    """The same scan finds what pages may decorate (Dataset's one image is a fragment): it reads them."""
    assert ("one_image", "fragment") in {(function, name) for function, _, name in
                                          decorators(PAGES[0].parent / "dataset.py")}


def test_a_plotted_figure_sends_what_plotly_makes_of_it_made_once(test_split):
    """`lab_ui.plot` hands Streamlit a figure's dict made once (`lab_ui.Sent`): the chart a browser gets
    is the JSON Streamlit makes of the figure itself (a digit grid: a PNG and numpy label positions)."""
    import plotly.io
    import plotly.tools

    import lab_ui
    from mnistlab import plots

    fig = plots.digit_grid(test_split.normalized(list(range(16))), test_split.labels[:16], title="A batch")

    def streamlit_json(figure) -> str:  # as st.plotly_chart makes a chart's spec
        return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(figure, validate_figure=True),
                                 validate=False)

    sent = lab_ui.Sent.of(fig)
    assert streamlit_json(sent) == streamlit_json(fig)
    assert lab_ui.Sent.of(fig).to_dict() is sent.to_dict()  # made once, however often it is plotted
    assert lab_ui.Sent.of(sent) is sent and lab_ui.Sent.of({"data": []}) == {"data": []}
