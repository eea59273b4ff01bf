"""Clock facts of a run: read from the target's own answers, and a clock that moves during a run."""

from wqkit.experiments.provenance import check_clock_held, clock_provenance

BOOT = "[    2.469734] clocksource: Switched to clocksource tsc"
WATCHDOG = "[  126.825058] tsc: Marking TSC unstable due to clocksource watchdog"


class RecordedTarget:
    """A target answering the clock facts' command with what a TCG guest printed."""

    def __init__(self, clocksource: str, kernel_said: str) -> None:
        self.clocksource, self.kernel_said = clocksource, kernel_said

    def run(self, command: str, check: bool = False):
        stdout = (f"flags\t\t: fpu tsc msr tsc_known_freq\n\n{self.clocksource}\n\n{self.kernel_said}\n\n"
                  "virtme_hostname=virtme-ng nr_open=1048576 oops=panic tsc=reliable console=ttyS0\n")
        return type("Result", (), {"stdout": stdout, "returncode": 0})()


def test_clock_facts_come_from_the_targets_answers():
    clock = clock_provenance(RecordedTarget("tsc", BOOT))
    assert clock["clocksource"] == "tsc" and clock["tsc_known_freq"] and not clock["constant_tsc"]
    assert clock["tsc_options"] == ["tsc=reliable"] and not clock["tsc_unstable"]


def test_a_clock_that_held_is_left_alone_and_one_that_moved_is_recorded():
    clock = clock_provenance(RecordedTarget("tsc", BOOT))
    kept = dict(clock)
    check_clock_held(RecordedTarget("tsc", BOOT), clock)
    assert clock == kept
    check_clock_held(RecordedTarget("hpet", WATCHDOG), clock)
    assert clock["changed_during_run"]["clocksource"] == "hpet" and clock["changed_during_run"]["tsc_unstable"]
    assert clock["comparable"] is False and clock["clocksource"] == "tsc"
