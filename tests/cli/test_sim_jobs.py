"""`spikeforge sim --jobs`: cases in worker processes, the summary in the suite's order."""

import pytest

from spikeforge.cli import main
from spikeforge.sim.suite import CASES


@pytest.mark.sim
def test_sim_runs_cases_in_two_workers_and_prints_them_in_the_suites_order(capsys):
    assert main(["sim", "--jobs", "2", "registers"]) == 0
    out = capsys.readouterr().out
    labels = [c.label for c in CASES if c.bench == "registers"]
    assert len(labels) == 2
    rows = [line for line in out.splitlines() if line.startswith("registers ")]
    assert [next(label for label in labels if label in row) for row in rows] == labels
    assert all(row.rstrip().endswith("PASS") for row in rows)
    assert "2 passed, 0 failed" in out


def test_sim_refuses_jobs_below_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "--jobs", "0"])
    assert exit_info.value.code == 2
    assert "--jobs takes a whole number of 1 or more, not '0'" in capsys.readouterr().err
