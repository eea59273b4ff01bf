"""The seed's ``drgn wq_monitor.py``, now a thin wrapper over wqkit.

Run it with drgn's own command line, on whatever kernel drgn attaches to::

    .venv/bin/drgn scripts/wq_monitor.py -v events                 # the running kernel (root)
    .venv/bin/drgn -c vmcore -s vmlinux scripts/wq_monitor.py -s ALL_POOLWORKQUEUES

It takes the seed's options; ``wqkit monitor`` offers the same plus the lab,
JSON/CSV output and more.
"""

import argparse
import sys

from wqkit.cli.inspect import add_monitor_options
from wqkit.errors import WqkitError
from wqkit.inspect.monitor import monitor
from wqkit.inspect.snapshot import take_snapshot

parser = argparse.ArgumentParser(prog="wq_monitor.py", description="Print workqueue information.")
add_monitor_options(parser)
args = parser.parse_args(sys.argv[1:])
out = open(args.output, "w") if args.output else sys.stdout
try:
    monitor(lambda: take_snapshot(prog), out, names=args.workqueues,  # noqa: F821 -- drgn provides prog
            interval=args.interval, max_iterations=args.max_iterations, scenario=args.scenario,
            verbose=args.verbose, active_only=args.show_active_pool)
except WqkitError as exc:
    sys.exit(f"wq_monitor.py: error: {exc}")
except KeyboardInterrupt:
    pass
