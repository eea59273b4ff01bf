"""The declarations (modules/*.toml): checked in Python before anything loads, the one place each
parameter is declared, the C side generated from them, and experiments from outside the repository."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path


import pytest

from wqkit.errors import WqkitError
from wqkit.experiments import kmod
from wqkit.runs import cgen, spec
from wqkit.runs.kinds import run_kind, run_kinds
from wqkit.experiments.scaffold import new_experiment
from wqkit.paths import MODULES_DIR, SOURCE_DIR


def test_valid_parameters_become_insmod_arguments():
    assert kmod.module_spec("wq_smoke").insmod_args({"nr": 5000}) == ["nr=5000"]
    assert kmod.module_spec("wq_smoke").insmod_args({"nr": "0x10"}) == ["nr=16"]


@pytest.mark.parametrize("value, message", [
    (0, r"nr=0 is out of range \(1\.\.100000\)"),
    (-1, r"nr=-1 is out of range"),
    (100_001, r"nr=100001 is out of range"),
    ("many", r"nr='many' is not an integer"),
    (True, r"nr=True is not an integer"),
    (1.5, r"nr=1.5 is not an integer"),
])
def test_invalid_values_are_refused(value, message):
    with pytest.raises(WqkitError, match=message):
        kmod.module_spec("wq_smoke").insmod_args({"nr": value})


def test_unknown_parameter_names_the_known_ones():
    with pytest.raises(WqkitError, match=r"unknown parameter 'delay' \(known: nr\)"):
        kmod.module_spec("wq_smoke").insmod_args({"delay": 1})


def test_unknown_module_names_the_known_ones():
    with pytest.raises(WqkitError, match=r"unknown module 'nope' \(known: .*wq_smoke"):
        kmod.module_spec("nope")


def test_any_is_the_declared_value_and_flags_take_names():
    exp = spec.experiment("insert_exec")
    assert exp.values({"cpu": "any", "wq_flags": "unbound,highpri", "serial": True, "nr": None}) == \
        {"cpu": -1, "wq_flags": 3, "serial": 1}
    assert spec.experiment("kserver").values({"cpus": "any"}) == {"cpus": ""}
    with pytest.raises(WqkitError, match="cpu=any is not an integer|'any' is not an integer"):
        spec.experiment("new_worker").values({"cpu": "any"})     # new_worker declares no "any"
    with pytest.raises(WqkitError, match="nr_samples is not set at load time"):
        spec.experiment("kserver").values({"nr_samples": 3})


def test_wq_flag_bits_are_declared_once_and_generated_for_c():
    """The bits live in shared_params.toml only: the generated wqkit_flags.h defines them (and their
    union), wq_flags' range is their union, and no module source defines one of its own."""
    header = cgen.generated(spec.modules().values())["wqkit_flags.h"]
    c_bits = {name.lower(): int(value, 0) for name, value in
              re.findall(r"#define WQKIT_WQ_(\w+)\s+(0x[0-9a-f]+)", header) if name != "ALL"}
    assert c_bits == spec.wq_flag_bits() == {"unbound": 0x1, "highpri": 0x2, "cpu_intensive": 0x4, "bh": 0x8}
    assert re.search(r"#define WQKIT_WQ_ALL\s+0xf\b", header)
    # A module's range is the union of the bits it takes (bh only where declared).
    assert spec.module_spec("wq_insert_exec").param("wq_flags").max == 0xf
    assert (spec.module_spec("wq_kserver").param("wq_flags").min, spec.module_spec("wq_kserver").param("wq_flags").max) \
        == (0, 0x7)
    for source in [*MODULES_DIR.glob("*.c"), *MODULES_DIR.glob("*.h")]:
        if source.name != "wqkit_flags.h":
            assert not re.search(r"#define WQKIT_WQ_(UNBOUND|HIGHPRI|CPU_INTENSIVE|BH|ALL)\b", source.read_text()), source


def _declared() -> dict[str, set]:
    """Each declared parameter name (of a module, or of a tracer): the defaults it is declared with."""
    names: dict[str, set] = {}
    params = [p for module in spec.modules().values() for p in module.params]
    params += [p for kind in run_kinds().values() if kind.tracer for p in kind.params]
    for param in params:
        names.setdefault(param.name, set()).add(param.default)
    return names


def test_c_sources_declare_no_parameter_of_their_own():
    """Every load-time parameter comes from the generated header: no module_param, no default, no
    range macro in a module's source."""
    for module in spec.modules().values():
        source = (module.directory / module.source).read_text()
        assert f'#include "{module.header}"' in source, module.source
        assert not re.search(r"^module_param\(", source, re.M), f"{module.source} declares a parameter"
        for param in (p for p in module.params if p.settable or p.type == "output"):
            assert not re.search(rf"^MODULE_PARM_DESC\({param.name},", source, re.M), (module.source, param.name)
            assert not re.search(rf"^static [^;(]*\b{param.name}\b( = [^;]*)?;", source, re.M), \
                (module.source, param.name)
            assert not re.search(rf"#define {param.name.upper()}_(MAX|MIN)\b", source), (module.source, param.name)


def _literal_number(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


#: Names that are declared parameters elsewhere but mean something else where they appear.
HOMONYMS = {("options.py", "--cpus"),        # the lab VM's CPU count, not kserver's task CPUs
            ("synthetic.py", "cpus"),        # a synthetic run's target CPU count
            ("state.py", "workqueues"),      # how many workqueues a plot shows
            # the seconds a guest command, a QMP reply or a boot may take, not a run's timeout
            ("qmp.py", "timeout"), ("vm.py", "timeout"), ("kept.py", "timeout"), ("lab.py", "timeout"),
            ("lab.py", "--timeout")}


def test_python_declares_no_parameter_default_of_its_own():
    """No function argument, keyword or dict entry named like a declared parameter carries a number
    in wqkit's code, benchmarks excepted: defaults and ranges are read from the declarations."""
    names, found = _declared(), []
    for path in (SOURCE_DIR / "wqkit").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.arguments):
                args = node.posonlyargs + node.args + node.kwonlyargs
                defaults = [None] * (len(node.posonlyargs + node.args) - len(node.defaults)) + node.defaults \
                    + node.kw_defaults
                found += [(path.name, a.arg) for a, d in zip(args, defaults)
                          if a.arg in names and d is not None and _literal_number(d)]
            elif isinstance(node, ast.Dict):
                found += [(path.name, k.value) for k, v in zip(node.keys, node.values)
                          if isinstance(k, ast.Constant) and k.value in names and _literal_number(v)]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                flags = [a.value for a in node.args if isinstance(a, ast.Constant)]
                default = next((k.value for k in node.keywords if k.arg == "default"), None)
                found += [(path.name, f) for f in flags if isinstance(f, str)
                          and f.lstrip("-").replace("-", "_") in names and _literal_number(default)]
    found = [f for f in found if f not in HOMONYMS]
    assert not found, f"parameters declared outside their module's or tracer's TOML: {found}"


def _parameters_cell(notebook: Path) -> dict:
    """The parameters cell of a notebook's py:percent twin, as name → value."""
    text = notebook.read_text()
    cell = text.split('# %% tags=["parameters"]\n', 1)[1].split("# %%", 1)[0]
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell).body
            if isinstance(node, ast.Assign)}


def test_notebooks_parameters_are_checked_against_the_declarations():
    """A notebook's parameter named like a parameter of the run kind it runs is None (the declared
    default: a report passes its own with -p, checked against the declaration) or a value other
    than the declared default, the report's own choice (engine = "both" to compare the engines)."""
    checked = 0
    for notebook in sorted((SOURCE_DIR / "notebooks").glob("*.py")):
        source = notebook.read_text()
        kinds = [run_kind(name) for name in re.findall(r'measure_or_load\("(\w+)"', source)]
        kinds += [run_kind("trace_workers")] if "trace_or_load(" in source else []
        for kind in kinds:
            declared = {p.name: p for p in (*kind.params, *kind.load_options({}))}
            for key, value in _parameters_cell(notebook).items():
                if key in declared and value is not None:
                    param = declared[key]
                    assert param.check(kind.name, value) != param.check(kind.name, param.default), \
                        f"{notebook.name}: {key} = {value!r} re-declares the default"
                checked += key in declared
    assert checked >= 14


def test_kbuild_builds_every_declared_module():
    text = cgen.make_fragment(spec.modules().values())
    listed = next(line for line in text.splitlines() if line.startswith("WQKIT_MODULES_ALL :="))
    assert sorted(listed.split(":=")[1].split()) == sorted(m for m in spec.modules() if not spec.modules()[m].external)


def test_generated_header_carries_the_declaration():
    header = cgen.header(spec.module_spec("wq_new_worker"))
    assert "#define WQKIT_NR_WORK_MAX_MAX\t100000" in header
    assert "static unsigned int nr_work_max = WQKIT_NR_WORK_MAX_DEFAULT;" in header
    assert 'MODULE_PARM_DESC(delay, "time between two insertions (0..10000 ms, default 100)");' in header
    assert 'wqkit_param_range("hold_ms", hold_ms, WQKIT_HOLD_MS_MIN, WQKIT_HOLD_MS_MAX)' in header


def test_kserver_limits_are_declared_once_and_read_by_c_and_python():
    """The task graph's limits come from kserver.toml: the header defines them, the parser uses
    them, and wqkit.experiments.graph checks the same numbers; no literal limit is left in C."""
    from wqkit.experiments import graph

    module = spec.module_spec("wq_kserver")
    header = cgen.header(module)
    for name, value in module.limits.items():
        assert re.search(rf"#define WQKIT_LIMIT_{name.upper()}\t{value}(ULL)?\n", header), name
    assert (graph.MAX_TASKS, graph.MAX_EDGES, graph.MAX_TEXT, graph.MAX_SAMPLES, graph.MAX_MEM_KIB) == tuple(
        module.limits[k] for k in ("max_tasks", "max_edges", "max_text", "max_samples", "max_mem_kib"))
    assert graph.KINDS == {k: module.limits[f"max_{k}"] for k in ("busy", "sleep", "mem")}
    source = (module.directory / module.source).read_text()
    for value in module.limits.values():
        assert not re.search(rf"\b{value}(ULL)?\b", source), f"kserver.c spells the limit {value} itself"
    with pytest.raises(WqkitError, match=r"at most 4096 and"):
        graph.TaskGraph({i: graph.Task(i, "busy", 1) for i in range(module.limits["max_tasks"] + 1)}).validate(repeat=1)


def test_every_experiment_declares_a_report_the_notebooks_can_show():
    from wqkit.notebook import REPORT_SECTIONS

    for exp in spec.experiments().values():
        assert exp.report and set(exp.report) <= REPORT_SECTIONS.keys(), (exp.name, exp.report)
    assert "phases" in spec.experiment("insert_exec").report  # only where the patch's points apply
    assert "phases" not in spec.experiment("exec_time_pred").report


def test_bad_declarations_are_one_line_errors(tmp_path):
    (tmp_path / "x.c").write_text("")
    for body, message in (('module = "wq_x"\nsource = "x.c"\n', "missing description"),
                          ('module = "wq_x"\nsource = "y.c"\ndescription = "d"\n', "its source y.c"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[[param]]\nname = "n"\n'
                           'type = "uint"\nhelp = "h"\ndefault = 5\n', "give its min and max"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[[param]]\nname = "n"\n'
                           'type = "uint"\nhelp = "h"\ndefault = 50\nmin = 1\nmax = 9\n', "n=50 is out of range"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[[param]]\nname = "n"\n'
                           'type = "uint"\n', "give its name, type and help"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[limits]\nmax = -1\n',
                           "each limit is a name and a non-negative integer"),
                          ('module = [', "not a module declaration"),
                          ('module = "wq_x/../y"\nsource = "x.c"\ndescription = "d"\n',
                           "'wq_x/../y' is not a module name"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[experiment]\nname = "X Y"\n',
                           "'X Y' is not an experiment name"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[[param]]\nshared = "wq_flagz"\n',
                           "shared parameter 'wq_flagz' is not in shared_params.toml"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[[param]]\n'
                           'shared = "affinity_scope"\n', "requires wq_flags=unbound, which it does not take"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[[param]]\nname = "s"\n'
                           'type = "choice"\nhelp = "h"\ndefault = "a"\nchoices = ["a", "b"]\nsince = { c = "6.6" }\n',
                           "since 'c' is none of its choices or bits"),
                          ('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n[[param]]\nname = "s"\n'
                           'type = "choice"\nhelp = "h"\ndefault = "c"\nchoices = ["a", "b"]\n',
                           "s='c' is not one of a, b")):
        (tmp_path / "x.toml").write_text(body)
        with pytest.raises(WqkitError, match=message):
            spec.read_spec(tmp_path / "x.toml")


def test_an_external_experiment_is_found_and_offered_by_the_cli(tmp_path, monkeypatch):
    home = new_experiment("my_probe", tmp_path)
    monkeypatch.setenv(spec.ENV, str(tmp_path))
    exp = spec.experiment("my_probe")
    assert exp.module == "wq_my_probe" and exp.module_spec.external
    assert {p.name for p in exp.options} == {"nr", "gap_us", "cpu"}
    files = kmod.build_sources()
    assert {"my_probe.c", "my_probe.toml", "my_probe_params.h"} <= files.keys()
    assert b"wq_my_probe-y := my_probe.o wqkit_samples.o wqkit_experiment.o" in files["wqkit.mk"]
    help_text = subprocess.run([sys.executable, "-m", "wqkit.cli", "run", "my_probe", "--help"], capture_output=True,
                               text=True, env={**os.environ, spec.ENV: str(tmp_path)}).stdout
    help_text = " ".join(help_text.split())
    assert "--gap-us N time between two inserts, 0 for a burst (0..100000 µs, default 0)" in help_text
    assert home == tmp_path / "my_probe"
    with pytest.raises(WqkitError, match="exists already"):
        new_experiment("my_probe", tmp_path)
    with pytest.raises(WqkitError, match="is not an experiment name"):
        new_experiment("My-Probe", tmp_path)


def test_an_installed_package_names_its_experiments_through_an_entry_point(tmp_path):
    """A package that declares ``[project.entry-points."wqkit.experiments"]`` (here its installed
    metadata, on sys.path) makes its experiments known without WQKIT_EXPERIMENTS."""
    new_experiment("pkg_probe", tmp_path / "experiments")
    site = tmp_path / "site"
    (site / "probe_pkg").mkdir(parents=True)
    (site / "probe_pkg" / "__init__.py").write_text(
        f"from pathlib import Path\n\n\ndef experiments():\n    return Path({str(tmp_path / 'experiments')!r})\n")
    info = site / "probe_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{spec.ENTRY_POINT_GROUP}]\nprobe = probe_pkg:experiments\n")
    env = {**os.environ, "PYTHONPATH": f"{site}:{SOURCE_DIR}"}
    env.pop(spec.ENV, None)
    listed = subprocess.run([sys.executable, "-m", "wqkit.cli", "module", "--list"], capture_output=True,
                            text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^wq_pkg_probe\s", listed.stdout, re.M), listed.stdout
    help_text = subprocess.run([sys.executable, "-m", "wqkit.cli", "run", "pkg_probe", "--help"],
                               capture_output=True, text=True, env=env)
    assert help_text.returncode == 0 and "--gap-us" in help_text.stdout, help_text.stderr


def test_every_local_include_of_a_module_is_in_git_or_generated():
    """A clean clone builds: each ``#include "..."`` of modules/ names a tracked file or a header
    generated from a declaration (an ignore rule once hid wqkit_params.h)."""
    tracked = set(subprocess.run(["git", "-C", str(SOURCE_DIR), "ls-files", "modules"], capture_output=True,
                                 text=True, check=True).stdout.split())
    generated = set(cgen.generated([m for m in spec.modules().values() if not m.external]))
    includes = set()
    for path in sorted(MODULES_DIR.glob("*.[ch]")):
        if f"modules/{path.name}" in tracked:
            includes |= set(re.findall(r'^#include "([^"]+)"', path.read_text(), re.M))
    includes |= set(re.findall(r'^#include "([^"]+)"', "".join(cgen.generated(spec.modules().values()).values()),
                               re.M))
    assert "wqkit_params.h" in includes
    missing = {name for name in includes if f"modules/{name}" not in tracked and name not in generated}
    assert not missing, f"included but neither tracked nor generated: {missing}"


def test_a_shared_parameter_is_declared_once_and_may_be_overridden(tmp_path):
    """wq_flags, max_active and cpu are declared in modules/shared_params.toml, taken by the modules
    that name them, each key overridable in place."""
    (tmp_path / "x.c").write_text("")
    (tmp_path / "x.toml").write_text('module = "wq_x"\nsource = "x.c"\ndescription = "d"\n'
                                     '[[param]]\nshared = "cpu"\ndefault = 0\n[[param]]\nshared = "wq_flags"\n')
    cpu, flags = spec.read_spec(tmp_path / "x.toml").params
    assert (cpu.name, cpu.default, cpu.min, cpu.any) == ("cpu", 0, -1, -1)
    assert flags.name == "wq_flags" and flags.flag == "--flags"
    users = {name for name, module in spec.modules().items() if any(p.name == "wq_flags" for p in module.params)}
    assert {"wq_insert_exec", "wq_exec_time_pred", "wq_kserver"} <= users
    assert all('name = "wq_flags"' not in path.read_text() for path in spec.spec_files(spec.MODULES_DIR))


def test_a_parameter_is_taken_by_its_name_or_by_its_option_s_older_spelling():
    """Notebooks and papermill command lines said ``flags`` for ``wq_flags`` (the --flags option):
    both spellings reach the module; giving both is refused."""
    exp = spec.experiment("insert_exec")
    assert exp.values({"flags": "unbound"}) == exp.values({"wq_flags": "unbound"}) != {}
    assert exp.values({"wq_flags": None, "flags": "unbound"}) == exp.values({"wq_flags": "unbound"})
    assert exp.values({"wq_flags": None, "flags": None}) == {}
    with pytest.raises(WqkitError, match="wq_flags is given twice"):
        exp.values({"wq_flags": "unbound", "flags": "highpri"})


def test_calibration_and_cpu_parameters_are_declared_not_named_in_code():
    """The experiment that measures the timestamp pair says so (calibrates = PARAM), and the
    parameters naming CPUs say so (role = "cpu"): the runner reads both from the declarations."""
    from wqkit.experiments.runner import check_cpu

    assert spec.calibrator().name == "insert_exec" and spec.calibrator().calibrates == "calibrate"
    roles = {(m.name, p.name) for m in spec.modules().values() for p in m.params if p.role == "cpu"}
    assert {("wq_insert_exec", "cpu"), ("wq_new_worker", "cpu"), ("wq_kserver", "cpus")} <= roles
    kserver = spec.experiment("kserver")
    check_cpu(kserver.options, {"cpus": "0,1"}, 2)
    with pytest.raises(WqkitError, match=r"cpus=0,2 names a CPU the target does not have \(2 CPUs: 0..1\)"):
        check_cpu(kserver.options, {"cpus": "0,2"}, 2)
    with pytest.raises(WqkitError, match=r"cpu=2 names a CPU"):
        check_cpu(spec.experiment("insert_exec").options, {"cpu": 2}, 2)


@pytest.mark.parametrize("values, release, message", [
    ({"wq_flags": "unbound", "affinity_scope": "cache_shard"}, "6.12.95+deb12-amd64",
     r"affinity_scope=cache_shard needs Linux 7\.1 or later; the target's kernel is 6\.12\.95"),
    ({"wq_flags": "unbound", "affinity_scope": "cpu"}, "6.1.0-57-amd64", r"affinity_scope=cpu needs Linux 6\.6"),
    ({"wq_flags": "unbound", "affinity_strict": 1}, "6.1.0-57-amd64", r"affinity_strict=1 needs Linux 6\.6"),
    ({"wq_flags": "unbound", "affinity_scope": "cache_shard"}, "7.3.4+deb13-amd64", None),
    ({"wq_flags": "unbound", "affinity_scope": "smt", "affinity_strict": 1}, "6.12.95+deb12-amd64", None),
    ({"nr": 10}, "6.1.0-57-amd64", None),                     # the defaults: every kernel takes them
])
def test_a_value_newer_than_the_kernel_is_refused_before_boot(values, release, message):
    module = spec.module_spec("wq_insert_exec")
    checked = module.checked(values)
    if message is None:
        module.check_release(checked, release)
    else:
        with pytest.raises(WqkitError, match=message):
            module.check_release(checked, release)


@pytest.mark.parametrize("values, message", [
    ({"affinity_scope": "cpu"}, r"affinity_scope=cpu needs wq_flags=unbound"),
    ({"affinity_strict": True}, r"affinity_strict=1 needs wq_flags=unbound"),
    ({"wq_flags": "unbound", "affinity_scope": "pod"}, r"affinity_scope='pod' is not one of default, cpu"),
])
def test_workqueue_attributes_are_refused_where_the_workqueue_cannot_take_them(values, message):
    with pytest.raises(WqkitError, match=message):
        spec.experiment("insert_exec").values(values)


def test_a_choice_and_what_it_requires_are_checked_by_the_module_too():
    """The C side of a choice (the declared list) and of a required flag, generated."""
    header = cgen.header(spec.module_spec("wq_insert_exec"))
    assert ('static const char * const affinity_scope_choices[] = { "default", "cpu", "smt", "cache", '
            '"cache_shard", "numa", "system" };') in header
    assert 'module_param(affinity_scope, charp, 0444);' in header
    assert ('wqkit_param_requires("affinity_scope", strcmp(affinity_scope, WQKIT_AFFINITY_SCOPE_DEFAULT), '
            'wq_flags & WQKIT_WQ_UNBOUND, "wq_flags=unbound")') in header
    assert "desc->affinity_scope = affinity_scope;" in header and '#include "wqkit_flags.h"' in header


@pytest.mark.parametrize("module, values, message", [
    ("wq_insert_exec", {"wq_flags": "bh,unbound"}, "bh and unbound exclude each other"),
    ("wq_insert_exec", {"wq_flags": "bh,cpu_intensive"}, "bh and cpu_intensive exclude each other"),
    ("wq_insert_exec", {"wq_flags": "bh", "max_active": 4}, "max_active=4 and wq_flags=bh exclude each other"),
    ("wq_kserver", {"wq_flags": "bh"}, r"wq_flags=bh is not a flag this module takes \(percpu or unbound,"),
    ("wq_exec_time_pred", {"wq_flags": 8}, "wq_flags=bh is not a flag this module takes"),
])
def test_a_bh_workqueue_is_taken_only_where_declared_and_alone(module, values, message):
    with pytest.raises(WqkitError, match=message):
        spec.module_spec(module).checked(values)


def test_bh_is_a_6_9_flag_and_highpri_may_join_it():
    module = spec.module_spec("wq_insert_exec")
    values = module.checked({"wq_flags": "bh,highpri"})
    assert values == {"wq_flags": 0xA}
    module.check_release(values, "6.12.95+deb12-amd64")
    with pytest.raises(WqkitError, match=r"wq_flags=highpri,bh \(bh\) needs Linux 6\.9"):
        module.check_release(values, "6.1.0-57-amd64")
    header = cgen.header(module)
    assert 'wqkit_param_exclusive("wq_flags", wq_flags, WQKIT_WQ_BH | WQKIT_WQ_UNBOUND, "bh and unbound")' in header
    assert "!(wq_flags & WQKIT_WQ_BH)" in header and "#define WQKIT_WQ_BH\t0x8" in cgen.flags_header()
    assert "WQKIT_WQ_BH" not in cgen.header(spec.module_spec("wq_kserver"))
