"""Samples as the modules hand them over, and as wqkit stores them.

The kernel side (``modules/wqkit_samples.h``) exports an array of 32-byte
little-endian records through debugfs, plus a ``stats`` line of counters.
wqkit keeps the valid records, sorted by ``seq``, in ``samples.parquet``:

========== ======= =============================================================
column     type    meaning
========== ======= =============================================================
seq        uint32  work item index, 0..N-1
t0         uint64  TSC at the first timestamp (before queue_work_on(), or start)
t1         uint64  TSC at the second timestamp (work function start, or end)
cycles     int64   t1 - t0: the measured difference, in TSC cycles
cpu_queue  uint16  CPU that queued the work item
cpu_exec   uint16  CPU that executed it
pid        uint32  task (kworker) that executed it
========== ======= =============================================================

Cycles are the source of truth; nanoseconds are derived with the run's
``tsc_khz`` at analysis time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from wqkit.errors import WqkitError

SAMPLE_VALID = 0x1
SAMPLE_DTYPE = np.dtype([
    ("t0", "<u8"), ("t1", "<u8"), ("seq", "<u4"), ("pid", "<u4"),
    ("cpu_queue", "<u2"), ("cpu_exec", "<u2"), ("flags", "<u4"),
])
assert SAMPLE_DTYPE.itemsize == 32
COLUMNS = ["seq", "t0", "t1", "cycles", "cpu_queue", "cpu_exec", "pid"]
#: The record fields kept as columns (``cycles`` is computed).
FIELDS = ("seq", "t0", "t1", "cpu_queue", "cpu_exec", "pid")


@dataclass(frozen=True)
class RecorderStats:
    """The kernel recorder's counters (the ``stats`` debugfs file)."""

    state: str
    capacity: int
    produced: int
    dropped: int
    exported: int
    error: int
    tsc_khz: int
    #: The samples' kernel address (0 when the module does not say it).
    buffer: int = 0

    @classmethod
    def parse(cls, text: str) -> RecorderStats:
        try:
            fields = dict(item.split("=", 1) for item in text.split())
            return cls(state=fields["state"], buffer=int(fields.get("buffer", "0"), 16),
                       **{k: int(fields[k]) for k in ("capacity", "produced", "dropped", "exported", "error",
                                                      "tsc_khz")})
        except (KeyError, ValueError) as exc:
            raise WqkitError(f"unreadable recorder stats {text.strip()!r}: {exc}") from None


#: Each column's type (``cycles`` is t1 - t0, signed).
COLUMN_DTYPES = {**{name: SAMPLE_DTYPE[name] for name in FIELDS}, "cycles": np.dtype("<i8")}
#: How samples are written: uncompressed, without dictionaries (timestamps are unique values).
#: Writing 10^6 samples takes about 50 ms, against 100 ms with lz4 and 300 ms with Snappy, the
#: default: export speed first (benchmarks/sample_export.py), for 39 bytes a sample on disk
#: (21 with lz4).
PARQUET_OPTIONS = {"compression": "none", "use_dictionary": False}
#: Rows per Parquet row group: each is written by a thread while the next is gathered. 2^18
#: was the fastest of 2^16..2^19 for 10^6 samples (fresh process, lab VM up): smaller groups
#: cost more calls, larger ones overlap less.
ROW_GROUP = 1 << 18


def parse_samples(raw: bytes, path: Path | None = None) -> pd.DataFrame:
    """The valid records of a ``samples`` dump, as a DataFrame sorted by seq; with ``path``,
    also written there as Parquet.

    Gathered column by column into arrays allocated once, without intermediate
    frames, and sorted only when the records are not in seq order already.
    With ``path``, each ROW_GROUP rows are written by a thread (pyarrow drops
    the GIL) while the next ones are gathered: 10^6 records parsed and written
    in about 80 ms in a fresh process, against 100-200 ms one after the other.
    """
    if len(raw) % SAMPLE_DTYPE.itemsize:
        raise WqkitError(f"sample dump of {len(raw)} bytes is not a whole number of "
                         f"{SAMPLE_DTYPE.itemsize}-byte records")
    records = np.frombuffer(raw, dtype=SAMPLE_DTYPE)
    valid = (records["flags"] & SAMPLE_VALID) != 0
    if not valid.all():
        records = records[valid]
    seq = records["seq"]
    # Items that ran on several CPUs complete out of seq order. Gather each field in seq
    # order (a radix argsort, then 1-8 bytes a record), not the 32-byte records: 5 times faster.
    order = np.argsort(seq, kind="stable") if len(seq) > 1 and not (seq[1:] > seq[:-1]).all() else None
    columns = {name: np.empty(len(records), dtype=COLUMN_DTYPES[name]) for name in COLUMNS}
    with ExitStack() as stack:
        if path is not None:
            schema = pa.schema([(name, pa.from_numpy_dtype(COLUMN_DTYPES[name])) for name in COLUMNS])
            writer = stack.enter_context(pq.ParquetWriter(path, schema, **PARQUET_OPTIONS))
            # Entered last, left first: every row group is written before the file is closed.
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="wqkit-parquet"))
        writes = []
        for start in range(0, len(records), ROW_GROUP):
            rows = slice(start, start + ROW_GROUP)
            picked = rows if order is None else order[rows]
            for name in FIELDS:
                columns[name][rows] = records[name][picked]
            np.subtract(columns["t1"][rows], columns["t0"][rows], out=columns["cycles"][rows], casting="unsafe")
            if path is not None:
                group = pa.table({name: columns[name][rows] for name in COLUMNS})
                writes.append(pool.submit(writer.write_table, group))
        for write in writes:
            write.result()      # a failed write is raised here
    # No further copy (pandas copies a dict of arrays by default).
    return pd.DataFrame(columns, copy=False)


#: The kernel's measurement points (CONFIG_WQ_MEASURE, linux_patch_exp/), in
#: order: enum wq_measure_point of <linux/wq_measure.h>.
PHASE_POINTS = ("queue", "insert", "activate", "wake", "start", "func")
PHASE_DTYPE = np.dtype([(name, "<u8") for name in PHASE_POINTS])


def parse_phases(raw: bytes, seqs: np.ndarray) -> pd.DataFrame:
    """The kernel's timestamps of the work items ``seqs`` (one struct wq_measure_stamps
    per seq in ``raw``), as a DataFrame with a ``seq`` column; 0 = point not passed."""
    if len(raw) % PHASE_DTYPE.itemsize:
        raise WqkitError(f"phases dump of {len(raw)} bytes is not a whole number of "
                         f"{PHASE_DTYPE.itemsize}-byte records")
    stamps = np.frombuffer(raw, dtype=PHASE_DTYPE)
    seqs = seqs[seqs < len(stamps)]
    frame = pd.DataFrame({name: stamps[name][seqs] for name in PHASE_POINTS})
    frame.insert(0, "seq", seqs.astype(np.uint32))
    return frame
