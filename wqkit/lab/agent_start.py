"""Start the lab's agent from one file: its code and every pure-Python standard-library module
it imports, compiled by the guest's own interpreter and read in one go.

The guest runs the host's ``/usr/bin/python3`` over 9p, where each module an import finds costs
a directory check, a stat, an open and reads: a round trip through QEMU each, about 1 s of the
agent's 1.5 s start under TCG, on the critical path of every boot. From one file, the modules are
unmarshalled in memory instead; extension modules (``.so``) are still found the usual way.

  python3 -IS agent_start.py build OUT AGENT MODULE...   the bundle, on the host, by the same interpreter
  python3 -IS agent_start.py run BUNDLE                  the agent's main(), in the guest

A bundle maps each module's name to ``(is_package, marshalled code, source path, source size,
source mtime_ns)``: the host checks the last three before each boot (wqkit.lab.agent_bundle).
Standard library only.
"""

import marshal
import os     # frozen into the interpreter: no file read
import sys
# The import system's own ModuleSpec, frozen into the interpreter: importlib.machinery would
# be read over 9p before the bundle is there to serve it.
from _frozen_importlib import ModuleSpec

#: The agent's name in a bundle.
AGENT_MODULE = "agent"


class BundleFinder:
    """A meta-path finder and loader serving modules out of a loaded bundle."""

    def __init__(self, modules: dict):
        self.modules = modules

    def find_spec(self, name, path=None, target=None):
        entry = self.modules.get(name)
        if entry is None:
            return None
        is_package, _, origin = entry[:3]
        spec = ModuleSpec(name, self, origin=origin, is_package=is_package)
        spec.has_location = True        # __file__ is the source's path, as a module read from disk has
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(marshal.loads(self.modules[module.__spec__.name][1]), module.__dict__)


def build(out: str, agent: str, imports: list) -> None:
    """Write the bundle of ``agent`` and of the pure-Python modules that importing ``imports``
    loads (beyond those this interpreter had loaded at its start) into ``out``."""
    started = set(sys.modules)
    for name in imports:
        __import__(name)
    sources = {AGENT_MODULE: (False, agent)}
    for name, module in sys.modules.items():
        spec = getattr(module, "__spec__", None)
        if name not in started and spec is not None and (spec.origin or "").endswith(".py"):
            sources[name] = (spec.submodule_search_locations is not None, spec.origin)
    bundle = {}
    for name, (is_package, path) in sources.items():
        with open(path, "rb") as f:
            source = f.read()
        stat = os.stat(path)
        code = compile(source, path, "exec", dont_inherit=True)
        bundle[name] = (is_package, marshal.dumps(code), path, stat.st_size, stat.st_mtime_ns)
    with open(out, "wb") as f:
        f.write(marshal.dumps(bundle))


def run(bundle_path: str) -> None:
    """Serve imports from the bundle, then run the agent."""
    with open(bundle_path, "rb") as f:
        modules = marshal.loads(f.read())
    sys.meta_path.insert(0, BundleFinder(modules))
    __import__(AGENT_MODULE).main()


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        run(sys.argv[2])
