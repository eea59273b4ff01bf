"""Clock facts of a run: read from the target's own answers, and a clock that moves during a run."""

from wqkit.runs.provenance import CLOCK_FILES, check_clock_held, clock_provenance

BOOT = "[    2.469734] clocksource: Switched to clocksource tsc"
WATCHDOG = "[  126.825058] tsc: Marking TSC unstable due to clocksource watchdog"


class RecordedTarget:
    """A target answering the clock facts' reads with what a TCG guest's files and log held."""

    def __init__(self, clocksource: str, kernel_said: str) -> None:
        self.files = dict(zip(CLOCK_FILES, [
            "processor\t: 0\nflags\t\t: fpu tsc msr tsc_known_freq\n\nprocessor\t: 1\nflags\t\t: fpu tsc msr\n",
            f"{clocksource}\n",
            "virtme_hostname=virtme-ng nr_open=1048576 oops=panic tsc=reliable console=ttyS0\n"]))
        self.log = ["[    0.000000] Linux version 6.12.95+deb12-amd64",
                    "[    0.000000] Command line: console=ttyS0 tsc=reliable",
                    "[    0.020000] Kernel command line: console=ttyS0 tsc=reliable", kernel_said,
                    "[    3.000000] virtio_net virtio0: tsc-like name, not a TSC message"]

    def read_files(self, paths):
        return [self.files[path] for path in paths]

    def kernel_log(self, since: int = 0):
        return self.log, len(self.log)


def test_clock_facts_come_from_the_targets_answers():
    clock = clock_provenance(RecordedTarget("tsc", BOOT))
    assert clock["clocksource"] == "tsc" and clock["tsc_known_freq"] and not clock["constant_tsc"]
    assert clock["tsc_options"] == ["tsc=reliable"] and not clock["tsc_unstable"]
    assert clock["kernel_messages"] == []


def test_a_clock_that_held_is_left_alone_and_one_that_moved_is_recorded():
    clock = clock_provenance(RecordedTarget("tsc", BOOT))
    kept = dict(clock)
    check_clock_held(RecordedTarget("tsc", BOOT), clock)
    assert clock == kept
    check_clock_held(RecordedTarget("hpet", WATCHDOG), clock)
    assert clock["changed_during_run"]["clocksource"] == "hpet" and clock["changed_during_run"]["tsc_unstable"]
    assert clock["changed_during_run"]["kernel_messages"] == ["tsc: Marking TSC unstable due to clocksource watchdog"]
    assert clock["comparable"] is False and clock["clocksource"] == "tsc"
