"""Progress in a log file: a line every ~30 s with the remaining time, not every N steps."""

from gpaco.train.loop import Progress


def test_lines_come_by_time_with_an_eta(capsys):
    now = [0.0]
    p = Progress("lines", total=1000, desc="epoch 1/5", clock=lambda: now[0])
    for step in range(1, 1001):
        now[0] = step * 0.1  # 0.1 s a step: a line every 300 steps
        p.update(step, 2.0)
    p.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0] == "  epoch 1/5 step 300/1000 loss 2.0000 eta 1m10s"
    assert lines[-1].startswith("  epoch 1/5 step 900/1000")


def test_nothing_when_disabled(capsys):
    p = Progress("lines", total=10, desc="x", enabled=False, clock=lambda: 1e9)
    p.update(5, 1.0)
    assert capsys.readouterr().out == ""
