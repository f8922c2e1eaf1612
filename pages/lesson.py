"""Lesson: the lesson's steps in order, one at a time, with a presenter mode. Part 1 (neural networks in
PyTorch) at /lesson?step=N, part 2 (validation and overfitting) at /lesson?part=2&step=N, part 3
(convolutions) at /lesson?part=3&step=N.

The steps (their code, what it printed, the notes on the 2018 code) are `mnistlab.lesson`'s parts; this page
lays them out. The step, presenter mode and any changed value live in the address bar, so a refresh,
a bookmark or a second screen shows the same step.
"""

from dataclasses import replace

import plotly.graph_objects as go
import streamlit as st

import lab_ui
import page_cache
from mnistlab import lesson, lesson_step, notebook, plots, share
from mnistlab.errors import ConfigError

lab_ui.entry_guard()
ss = st.session_state

PRESENT_PX = 26  # presenter mode's text size: body text, code at most, and every text in a figure
MIN_CODE_PX = 16  # presenter mode: code shrinks to fit its longest line down to this, legible from the back
NARROW_PX = 1190  # presenter mode's width for the step on the smallest projector (1280 px less the padding)
FIGURE_TOP = "7rem"  # presenter mode: room above a step's figure (the page's padding and Previous/Next)
PRESENTER_CSS = f"""<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"],
[data-testid="stExpandSidebarButton"], [data-testid="stSidebarCollapseButton"] {{ display: none !important; }}
[data-testid="stMain"] [data-testid="stCode"] code {{ font-size: {PRESENT_PX}px; line-height: 1.45; }}
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p {{ font-size: {PRESENT_PX}px !important; }}
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p code {{ font-size: 0.85em; }}
[data-testid="stMain"] h2 {{ font-size: 2.2rem !important; padding-top: 0; }}
[data-testid="stMainBlockContainer"] {{ padding: 1rem 2rem 4rem; max-width: 100%; }}
.st-key-l_clicker {{ display: none !important; }}
.st-key-l_figure {{ height: calc(100vh - {FIGURE_TOP}) !important; flex: 0 0 auto !important; }}
</style>"""
# A presentation remote sends Page Down / Page Up (some, the arrow keys): Next and Previous. Listened
# for on the page's document, once; it acts only while presenter mode's "Leave" button is there, and
# never while a field has the keyboard.
CLICKER_JS = """<script>
if (!window.mnistlabClicker) {
  window.mnistlabClicker = true;
  const keys = {PageDown: "next", ArrowRight: "next", ArrowDown: "next",
                PageUp: "prev", ArrowLeft: "prev", ArrowUp: "prev"};
  document.addEventListener("keydown", (event) => {
    const which = keys[event.key], target = event.target;
    if (!which || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (!document.querySelector(".st-key-l_leave")) return;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    event.preventDefault();
    const button = document.querySelector(`.st-key-l_${which}_top button`);
    if (button && !button.disabled) button.click();
  });
}
</script>"""


# -- where we are: the address bar, else this visitor's last place ---------------------------------

params = st.query_params.to_dict()
if "step" in params or "part" in params:
    part_number, part_notice = lesson.parse_part(params.get("part"))
    number, notice = lesson.parse_step(params.get("step"), len(lesson.PARTS[part_number - 1].steps))
    if notice or part_notice:
        ss["l_step_notice"] = " ".join(filter(None, (part_notice, notice)))
else:  # back from another page: where this visitor was; a new visit: where the lesson starts
    part_number, number = ss.get("l_part", 1), ss.get("l_step", 1)
ss["l_part"], ss["l_step"] = part_number, number
part = lesson.PARTS[part_number - 1]
present = lesson.parse_present(params.get("present"))

link_values = {k: v for k, v in params.items() if k in lesson.VALUE_KEYS}
if link_values and link_values != ss.get("l_written"):  # a link's values, or an edited address
    decoded, notices = lesson.decode_values(link_values)
    ss["l_values"], ss["l_value_notices"] = decoded, (decoded, notices)
values: lesson_step.LessonValues = ss.setdefault("l_values", lesson_step.DEFAULT)


def write_url() -> None:
    """The step, presenter mode and the values that differ from the lesson's, in the address bar."""
    changed = {k: v for k, v in lesson.encode_values(ss["l_values"]).items()
               if v != lesson.encode_values(lesson_step.DEFAULT)[k]}
    wanted = {**({"part": str(ss["l_part"])} if ss["l_part"] != 1 else {}), "step": str(ss["l_step"]),
              **({"present": "1"} if ss.get("l_present") else {}), **changed,
              **lab_ui.link_params()}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
    ss["l_written"] = changed


def go_to(n: int) -> None:
    ss["l_step"] = min(max(n, 1), len(lesson.PARTS[ss["l_part"] - 1].steps))
    ss.pop("l_step_notice", None)
    write_url()


def go_to_part(p: int) -> None:
    """Another part, at its first step."""
    ss["l_part"] = p
    go_to(1)


def set_present(on: bool) -> None:
    ss["l_present"] = on
    write_url()


def edit(field: str, key: str | tuple[str, str], changed: str | None = None) -> None:
    """A value widget changed: the new LessonValues, and the address bar. A refused value is told
    under its field (`changed`, where two fields make one value), with the value the steps keep."""
    new = tuple(lab_ui.typed(ss[k]) for k in key) if isinstance(key, tuple) else lab_ui.typed(ss[key])
    try:
        ss["l_values"] = replace(ss["l_values"], **{field: new})
    except ConfigError as e:
        kept = getattr(ss["l_values"], field)
        if isinstance(key, tuple):
            kept = kept[key.index(changed)]
        ss["l_refused"] = (changed or key, f"{e} The steps still use {kept:g}.")
    write_url()


ss["l_present"] = present
write_url()
step = part.steps[number - 1]
n_steps = len(part.steps)

if present:
    st.html(PRESENTER_CSS)
    with st.container(key="l_clicker"):  # .st-key-l_clicker is hidden by PRESENTER_CSS
        st.html(CLICKER_JS, unsafe_allow_javascript=True)


def navigation(where: str) -> None:
    """Previous, the step's place, Next; in presenter mode, the way out."""
    cols = st.columns([1, 1, 1, 1.6] if present else [1, 1, 1], vertical_alignment="center")
    cols[0].button("Previous", icon=":material/arrow_back:", key=f"l_prev_{where}", on_click=go_to,
                   args=(number - 1,), disabled=number == 1, width="stretch")
    cols[1].markdown(f"**Step {number} of {n_steps}**", text_alignment="center")
    cols[2].button("Next", icon=":material/arrow_forward:", key=f"l_next_{where}", on_click=go_to,
                   args=(number + 1,), disabled=number == n_steps, width="stretch")
    if present and where == "top":
        cols[3].button("Leave presenter mode", icon=":material/fullscreen_exit:", key="l_leave",
                       on_click=set_present, args=(False,), width="stretch")


def tools() -> None:
    """The part, jump to a step, presenter mode, the notebook."""
    ss["l_part_choice"] = part.number
    st.radio("Part", [p.number for p in lesson.PARTS], key="l_part_choice", horizontal=True,
             format_func=lambda n: lesson.PARTS[n - 1].label, label_visibility="collapsed",
             on_change=lambda: go_to_part(ss["l_part_choice"]))
    # The step menu as wide as its longest title at 1280 px ("10. CNN against MLP: choose on validation,
    # report test"): its list is the box's width, and a narrower one cut the titles short. Presenter mode
    # and the notebook share the column beside it.
    menu, side = st.columns([2.4, 1], vertical_alignment="bottom")
    ss["l_jump"] = number
    menu.selectbox("Go to step", range(1, n_steps + 1), key="l_jump",
                   format_func=lambda n: f"{n}. {part.steps[n - 1].title}",
                   on_change=lambda: go_to(ss["l_jump"]))
    side.toggle("Presenter mode", key="l_present_toggle",
                on_change=lambda: set_present(ss["l_present_toggle"]),
                help="For a projector: no sidebar or editing, larger code and figures. "
                     "Bookmark the address to come back to it.")
    side.download_button("Jupyter notebook", icon=":material/download:",
                         data=lambda: notebook.to_bytes(notebook.lesson(values, part.number)),
                         file_name="mnist-lab-lesson.ipynb" if part.number == 1 else
                         f"mnist-lab-lesson-part-{part.number}.ipynb", mime="application/x-ipynb+json",
                         key="l_notebook", on_click="ignore", width="stretch",
                         help=f"Download part {part.number}'s {n_steps} steps with your values, to run in "
                              f"Jupyter.")


if not present:
    st.title("The lesson, step by step")
    st.caption("PyTorch's `nn` on MNIST, in the course's order: each step's code, then what running it "
               "printed here. Change a value where it appears; every later step follows. Part 2 is the "
               "course's next lesson: validation, overfitting, dropout and early stopping; part 3, "
               "convolutions: filters, pooling and a small CNN beside part 2's network.")
    if lab_ui.dataset() != part.dataset:
        st.info(f"This part of the lesson is {part.dataset.title}'s: its code loads {part.dataset.title}, "
                f"so it shows {part.dataset.things} whichever data set the sidebar chooses. The other "
                f"pages use {lab_ui.dataset().title}.", icon=":material/school:")
    tools()
navigation("top")

if ss.get("l_step_notice"):
    st.warning(ss["l_step_notice"], icon=":material/link_off:")
link_notices = ss.get("l_value_notices")
if link_notices and link_notices[0] == values:
    for text in link_notices[1]:
        st.warning(text, icon=":material/link_off:")


def code(text: str, language: str, key: str) -> None:
    """A code block; its lines never wrap. In presenter mode its font is the text's size, or just
    small enough for the longest line to fit the width (a monospace character is 0.6 em wide), down
    to MIN_CODE_PX; a line longer still scrolls sideways."""
    if present:
        longest = max(map(len, text.splitlines()), default=1)
        box = st.container(key=f"l_fit_{key}")
        fit = f"calc((100cqw - 2.5rem) / {0.6 * longest + 0.5:.1f})"  # 100cqw: the box's width
        box.html(f"<style>.st-key-l_fit_{key} {{ container-type: inline-size; }} .st-key-l_fit_{key} code "
                 f"{{ font-size: clamp({MIN_CODE_PX}px, {fit}, {PRESENT_PX}px) !important; }}</style>")
        box.code(text, language=language, wrap_lines=False)
    else:
        st.code(text, language=language, wrap_lines=False)


def width_share(text: str) -> float:
    """The share of presenter mode's width that `text`'s longest line takes at MIN_CODE_PX on a
    1280 px screen (a monospace character is 0.6 em wide; the box's padding besides)."""
    longest = max(map(len, text.splitlines()), default=1)
    return (0.6 * MIN_CODE_PX * longest + 44) / NARROW_PX


def figure(fig, drawn_by_the_lesson: bool) -> None:
    """A step's figure, its text as large as the text beside it. In presenter mode it sits at the top
    right, beside the code, as tall as the screen leaves."""
    fig = go.Figure(fig)  # a copy: the cached one is shared
    if drawn_by_the_lesson:  # Plotly's defaults, as the lesson's code leaves them: less room around
        fig.update_layout(margin=dict(l=10, r=10, t=50, b=10), height=None if present else 420)
    fig = plots.enlarged(fig, PRESENT_PX, line_chars=24) if present else plots.enlarged(fig, plots.FONT_SIZE)
    if present:
        with st.container(key="l_figure"):
            lab_ui.plot(fig, height="stretch")
    else:
        lab_ui.plot(fig)


def edit_values() -> None:
    """The values this step introduces, editable in place (not in presenter mode). The number fields
    have no bounds, so no value is dropped or cut in silence: `edit` checks it, and a refused one
    stays in its field this once, with why under it."""
    if not step.edits:
        return
    cols = st.columns(4)
    widgets = iter(cols)
    refused_key, refused = ss.pop("l_refused", (None, None))

    def number(label: str, key: str, value: int, args: tuple) -> None:
        column = next(widgets)
        if key != refused_key:
            ss[key] = float(value)  # the field's type (lab_ui.whole_field)
        lab_ui.whole_field(column, label, key, on_change=edit, args=args)
        if key == refused_key:
            column.error(refused)

    for field in step.edits:
        if field == "seed":
            number("Seed (torch.manual_seed)", "l_seed", values.seed, ("seed", "l_seed"))
        elif field == "index":
            ss["l_index"] = values.index
            next(widgets).slider("Image in the batch", 0, lesson_step.BATCH - 1, key="l_index",
                                 on_change=edit, args=("index", "l_index"))
        elif field == "n_hidden":
            number("Hidden units (n_hidden)", "l_units", values.n_hidden, ("n_hidden", "l_units"))
        elif field == "hidden":
            for i, (key, size) in enumerate(zip(("l_fc1", "l_fc2"), values.hidden), 1):
                number(f"fc{i} units", key, size, ("hidden", ("l_fc1", "l_fc2"), key))
        elif field == "std":
            ss["l_std"] = values.std
            next(widgets).select_slider("Weight std (normal_)", share.STD_SCALE, key="l_std",
                                        format_func=lambda s: f"{s:g}", on_change=edit, args=("std", "l_std"))


output = lesson.Output()
with lab_ui.show_errors():
    output = page_cache.lesson_outputs(part.values(values), part.number)[number - 1]
# A slide has room for one figure: the picture of the step's results where there is one (step 3's shows
# the image too, small, beside its numbers), the page for both.
drawn = [(f, f is output.figure) for f in (output.figure, output.picture) if f is not None]
if present:
    drawn = drawn[-1:]
main = drawn[0][0] if drawn else None
note = f"**Changed since the 2018 lesson.** {step.note}" if step.note else None

source = step.source(values)
if present and main is not None:  # a slide: the step at the left, its figure at the right, both on screen
    # the text's side as wide as its lines need, from 3/5 up to 7/10; a printout wider still (step 12's
    # rows of 0.) goes under both, the whole width
    printout_share = width_share(output.text or "")
    text_share = min(max(width_share(source), printout_share if printout_share <= 0.7 else 0, 0.6), 0.7)
    left, right = st.columns([text_share, 1 - text_share], gap="medium")
    below = st.container() if printout_share > text_share else left
else:
    left = right = below = st.container()
# A slide without a figure: the printout beside the code where both fit, so it stays above the fold.
beside = (present and main is None and bool(output.text)
          and width_share(source) + width_share(output.text) <= 1)
with left:
    st.header(f"{number}. {step.title}", divider="gray")
    st.markdown(step.text)
    if not present:
        edit_values()
    code_place, printout_place = (st.columns([width_share(source), width_share(output.text)], gap="medium")
                                  if beside else (st.container(), below))
    with code_place:
        code(source, "python", "code")
    if note and not present:
        st.info(note, icon=":material/update:")
    if output.text:
        with printout_place:
            code(output.text, "text", "printed")
if main is not None:
    with right:
        for fig, drawn_by_the_lesson in drawn:
            figure(fig, drawn_by_the_lesson)
if note and present:
    st.info(note, icon=":material/update:")

if part.number == 1 and number in (8, 9, 11, 14) and not present:
    build_state = values.sigmoid_network() if number in (8, 9) else values.relu_network()
    st.page_link("pages/build.py", label=f"Open this network on Build ({build_state.arch.label()}, "
                                         f"seed {build_state.seed}: the same weights)",
                 icon=":material/account_tree:", query_params=share.encode(build_state))

st.divider()
navigation("bottom")
