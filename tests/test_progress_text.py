"""The sweep's progress line reads as English at every remaining time, on the CLI's bar too."""

import io

from mnistlab import sweep_run
from mnistlab.__main__ import _SweepBar


class _Run:
    def __init__(self, progress):
        self._progress = progress

    def progress(self):
        return self._progress


def test_the_last_second_of_a_sweep_reads_less_than_a_second_left():
    assert sweep_run.SweepProgress(35, 36, 0.4).text() == "35 of 36 trained, less than a second left"
    assert sweep_run.SweepProgress(17, 36, 40.2).text() == "17 of 36 trained, about 40 s left"
    assert sweep_run.SweepProgress(1, 36, 125).text() == "1 of 36 trained, about 2 min 05 s left"
    assert sweep_run.SweepProgress(0, 36, None).text() == "0 of 36 trained"


def test_the_cli_bar_never_says_about_under_a_second():
    out = io.StringIO()
    bar = _SweepBar(4, stream=out, width=4)
    for finished, left in [(1, 2.6), (2, 0.9), (3, 0.2), (4, 0.0)]:
        bar(_Run(sweep_run.SweepProgress(finished, 4, left)))
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["[#...] 1 of 4 trained, about 3 s left",
                         "[##..] 2 of 4 trained, less than a second left",
                         "[###.] 3 of 4 trained, less than a second left"]
    assert not any("about under" in line or "about less" in line for line in lines)
