"""A class as its pages show it: the seat a browser keeps, the rules in words, a rank's move, and the
teacher's chart (a colour per student, the Pareto front, handles shown as typed)."""

from datetime import UTC, datetime

from mnistlab import class_plots
from mnistlab.challenge import Challenge
from mnistlab.class_view import Seat, moved, rules
from mnistlab.classes import Submission


def test_a_seat_goes_into_a_cookie_and_back_whatever_the_handle_and_a_forged_one_is_none():
    for handle in ("ada", "Zoë Ørsted", "李雷", "a.b;c=d e"):
        seat = Seat("K7MQ2P", handle, "K7MQ-2PXA-BCDE")
        text = seat.encode()
        assert all(c.isalnum() or c in "._-" for c in text)  # nothing a cookie cannot hold
        assert Seat.decode(text) == seat and seat.secret not in repr(seat)
    for forged in (None, "", "K7MQ2P", "K7MQ2P.YWRh", "K7MQ0P.YWRh.s", "K7MQ2P.!!.s", "K7MQ2P..s",
                   "K7MQ2P." + "eA" * 30 + ".s"):  # no such code, a bad handle, a 30-letter handle
        assert Seat.decode(forged) is None


def test_the_rules_say_each_setting_in_words_and_a_move_is_an_arrow():
    text = "\n".join(rules(Challenge("fashion", 20_000, "mlp,cnn", 3, datetime(2027, 1, 5, 9, 30, tzinfo=UTC),
                                     ladder=1)))
    for words in ("Fashion-MNIST", "at most 20,000 parameters", "MLP or CNN.", "at most 3 an hour",
                  "Tuesday 05 January 2027, 09:30 UTC", "at least 1 percentage point,"):
        assert words in text
    assert [moved(n) for n in (2, -1, 0, None)] == ["▲2", "▼1", "=", ""]


def _sub(i, handle, parameters, score, removed=False):
    return Submission(i, handle, datetime(2027, 1, 5, 9, i, tzinfo=UTC), "784-16-10 relu", parameters, "mlp",
                      score, score, None, removed)


def test_the_chart_has_a_colour_per_student_and_the_front_of_what_each_size_bought():
    subs = (_sub(1, "ada", 12_730, 0.90), _sub(2, "<b>ben</b>", 25_450, 0.93), _sub(3, "ada", 50_890, 0.92),
            _sub(4, "cy", 109_386, 0.97), _sub(5, "cy", 5_000, 0.99, removed=True))
    fig = class_plots.submissions_chart(subs)
    students = [t for t in fig.data if t.name != "Pareto front"]
    assert [t.name for t in students] == ["ada", "&lt;b&gt;ben&lt;/b&gt;", "cy"]  # never markup
    assert len({t.marker.color for t in students}) == 3
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(front.x) == [12_730, 25_450, 109_386]  # ada's 50,890 is beaten by ben's smaller network
    assert 5_000 not in [x for t in fig.data for x in t.x]  # removed: off the chart
    many = class_plots.submissions_chart(tuple(_sub(i, f"s{i}", 1000 + i, 0.5) for i in range(40)))
    assert len({(t.marker.color, t.marker.symbol) for t in many.data if t.name != "Pareto front"}) == 40


def test_typed_text_stays_text_in_markdown():
    from mnistlab.class_view import plain

    assert plain("![x](http://e/x.png)") == r"\!\[x\]\(http://e/x.png\)"  # no image fetched on a page
    assert plain("ada_b *c*") == r"ada\_b \*c\*" and plain("Year 10 B") == "Year 10 B"
