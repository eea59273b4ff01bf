"""Reports of a kernel in trouble, found in kernel log text as dmesg prints it."""

from wqkit.lab.splats import find_splats, first_splat_line, module_splats, splat_kind

KASAN = """\
[   20.101010] ==================================================================
[   20.101011] BUG: KASAN: slab-use-after-free in kserver_work_fn+0x2c/0x1a0 [wq_kserver]
[   20.101012] Read of size 8 at addr ffff888004f1c008 by task kworker/0:1/31
[   20.101013]
[   20.101014] CPU: 0 UID: 0 PID: 31 Comm: kworker/0:1 Not tainted 6.12.57-wqkit-debug #1
[   20.101015] Call Trace:
[   20.101016]  <TASK>
[   20.101017]  dump_stack_lvl+0x5d/0x80
[   20.101018]  kasan_report+0xb9/0xf0
[   20.101019]  </TASK>"""

LOCKDEP = """\
[   31.000001] ======================================================
[   31.000002] WARNING: possible circular locking dependency detected
[   31.000003] 6.12.57-wqkit-debug #1 Not tainted
[   31.000004] ------------------------------------------------------
[   31.000005] insmod/120 is trying to acquire lock:"""

KMEMLEAK = """\
unreferenced object 0xffff888005d7a000 (size 64):
  comm "insmod", pid 123, jiffies 4294893472
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 0):
    [<ffffffff8134c1a2>] __kmalloc_cache_noprof+0x1e2/0x2f0
    [<ffffffffc0001234>] 0xffffffffc0001234
unreferenced object 0xffff888005d7a040 (size 64):
  comm "insmod", pid 123, jiffies 4294893472
  backtrace (crc 0):
    [<ffffffff8134c1a2>] __kmalloc_cache_noprof+0x1e2/0x2f0"""

ORDINARY = """\
[    1.000000] wq_kserver: started: 16 tasks, repeat=10 wq_flags=0x0 max_active=0 cpus=any
[    2.000000] wq_kserver: unloaded"""


def test_a_kasan_report_is_one_report_with_its_call_trace():
    (splat,) = find_splats(KASAN.splitlines())
    assert splat.kind == "kasan"
    assert splat.line.startswith("BUG: KASAN: slab-use-after-free in kserver_work_fn")
    assert splat.report[-1].strip() == "</TASK>" and not splat.report[0].startswith("[")


def test_lockdep_kmemleak_and_ordinary_lines():
    assert [s.kind for s in find_splats(LOCKDEP.splitlines())] == ["warning"]
    leaks = find_splats(KMEMLEAK.splitlines())
    assert [s.kind for s in leaks] == ["kmemleak", "kmemleak"]
    assert leaks[0].report[-1].endswith("0xffffffffc0001234")
    assert find_splats(ORDINARY.splitlines()) == []


def test_each_marker_names_its_kind():
    cases = {
        "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585": "bug",
        "ODEBUG: free active (active state 0) object: 000000003ba9cd2c object type: work_struct": "odebug",
        "UBSAN: shift-out-of-bounds in modules/kserver.c:120:9": "ubsan",
        "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!": "bug",
        "INFO: task insmod:120 blocked for more than 120 seconds.": "hung task",
        "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:": "rcu stall",
        "BUG: KCSAN: data-race in wqkit_samples_record / wqkit_samples_read": "kcsan",
        "WARNING: CPU: 1 PID: 99 at kernel/workqueue.c:2258 __queue_work+0x4f0/0x5a0": "warning",
        "Kernel panic - not syncing: Fatal exception": "panic",
    }
    assert {line: splat_kind(line) for line in cases} == cases


def test_the_console_names_the_most_serious_report_first():
    console = LOCKDEP + "\n[   40.0] Kernel panic - not syncing: oops\n"
    assert first_splat_line(console) == "[   40.0] Kernel panic - not syncing: oops"
    assert first_splat_line(ORDINARY) is None


def test_reports_close_together_stay_apart_past_their_first_lines():
    lines = KASAN.splitlines() + LOCKDEP.splitlines()
    assert [s.kind for s in find_splats(lines)] == ["kasan", "warning"]


#: Recorded on the KCSAN lab kernel during insert_exec: a race inside the workqueue code (its read
#: of the worker's sum_exec_runtime), not in the module whose work item was running.
KCSAN_ELSEWHERE = """\
BUG: KCSAN: data-race in process_scheduled_works+0x1b8/0x532

race at unknown origin, with read to 0xffff8880002ae660 of 8 bytes by task 8 on cpu 0:
 process_scheduled_works+0x1b8/0x532
 worker_thread+0x1ec/0x291
 kthread+0x159/0x161

value changed: 0x000000011da56eaf -> 0x000000011dbcd060

Reported by Kernel Concurrency Sanitizer on:
CPU: 0 UID: 0 PID: 8 Comm: kworker/0:0 Tainted: G           O       6.12.118-wqkit-kcsan #1
Workqueue: insert_exec insert_exec_work_fn [wq_insert_exec]"""


def test_a_race_report_involves_a_module_only_through_its_code_locations():
    (race,) = find_splats(KCSAN_ELSEWHERE.splitlines())
    assert race.kind == "kcsan" and not race.involves("wq_insert_exec")
    ours = KCSAN_ELSEWHERE.replace(" worker_thread+0x1ec/0x291", " insert_exec_work_fn+0x20/0x50 [wq_insert_exec]")
    assert find_splats(ours.splitlines())[0].involves("wq_insert_exec")


#: A real report from the KCSAN lab kernel, while wq_fixture ran 10^5 items on its unbound
#: workqueue: 6.12's process_one_work() counts completions outside the pool's lock.
KCSAN_STATS = """\
==================================================================
BUG: KCSAN: data-race in process_scheduled_works / process_scheduled_works

write to 0xffff888000311ed0 of 8 bytes by task 4474 on cpu 1:
 process_scheduled_works+0x3fa/0x532
 worker_thread+0x1ec/0x291
 kthread+0x159/0x161

read to 0xffff888000311ed0 of 8 bytes by task 4471 on cpu 0:
 process_scheduled_works+0x3e7/0x532
 worker_thread+0x1ec/0x291
 kthread+0x159/0x161

value changed: 0x0000000000017ad6 -> 0x0000000000017add

Reported by Kernel Concurrency Sanitizer on:
CPU: 0 UID: 0 PID: 4471 Comm: kworker/u9:0 Tainted: G           O       6.12.118-wqkit-kcsan #1
Workqueue: wqkit_fx_unbound fixture_work_fn [wq_fixture]
=================================================================="""


def test_a_module_answers_for_its_own_reports_and_not_for_the_kernels_races():
    lines = (ORDINARY + "\n" + KCSAN_STATS + "\n" + KASAN.replace("wq_kserver", "wq_fixture")).splitlines()
    against, elsewhere = module_splats(lines, "wq_fixture")
    assert [s.kind for s in against] == ["kasan"] and [s.kind for s in elsewhere] == ["kcsan"]
    assert "process_scheduled_works /" in elsewhere[0].line
    against, elsewhere = module_splats(lines, "wq_kserver")   # a KASAN report is never set aside
    assert [s.kind for s in against] == ["kasan"] and not against[0].involves("wq_kserver")
