"""The asv suite cannot rot silently: every module in benchmarks/ imports (without
asv or CuPy), and one parametrisation of every benchmark class runs here, in quick
mode (FFEAT_BENCH_QUICK=1: one image, one repeat). Parameters that need what this
machine lacks (a GPU, the real face sets) skip the way asv skips them."""
import inspect
import itertools
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ("time_", "timeraw_", "mem_", "peakmem_", "track_")
MODULES = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")


@pytest.fixture(autouse=True)
def quick_mode(monkeypatch):
    monkeypatch.setenv("FFEAT_BENCH_QUICK", "1")
    monkeypatch.syspath_prepend(str(ROOT))


def _module(name):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


def _benchmarks(module):
    """(class or None, [benchmark functions]) defined in a module."""
    found = []
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            methods = [m for m in vars(obj) if m.startswith(PREFIXES)]
            if methods:
                found.append((obj, methods))
        elif inspect.isfunction(obj) and name.startswith(PREFIXES):
            found.append((None, [name]))
    return found


def test_every_benchmark_module_imports():
    assert {"_data", "run", "gpu", "bench_features", "bench_ratios", "bench_scaling",
            "bench_accuracy", "_corpus", "sources", "bench_sources"} <= set(MODULES)
    for name in MODULES:
        _module(name)


def _run_one_parametrisation(cls, methods) -> str:
    bench = cls()
    cache = ()
    if hasattr(cls, "setup_cache"):
        cache = (bench.setup_cache(),)
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    for combo in itertools.product(*params) if params else [()]:
        args = cache + tuple(combo)
        try:
            if hasattr(bench, "setup"):
                bench.setup(*args)
        except NotImplementedError:
            continue  # asv's skip: try the next parametrisation
        try:
            for name in methods:
                try:
                    value = getattr(bench, name)(*args)
                except NotImplementedError:
                    continue
                if name.startswith("track_"):
                    assert isinstance(value, float) and value == value, (name, combo, value)
        finally:
            if hasattr(bench, "teardown"):
                bench.teardown(*args)
        return f"ran {combo}"
    return "skipped"


@pytest.mark.parametrize("module_name", [m for m in MODULES if m != "_data"])
def test_one_parametrisation_of_each_benchmark_runs(module_name):
    module = _module(module_name)
    for cls, methods in _benchmarks(module):
        if cls is None:
            value = getattr(module, methods[0])()
            if methods[0].startswith("track_"):
                assert isinstance(value, float) and 0 <= value <= 1e9
        else:
            _run_one_parametrisation(cls, methods)


def test_demo_auc_is_an_auc():
    value = _module("bench_accuracy").track_demo_auc()
    assert 0.5 < value <= 1.0


def test_the_demo_reading_cannot_be_changed_by_a_caller():
    import dataclasses

    from ffeat.demo import DEMO_AUGMENT, DEMO_READING

    with pytest.raises(dataclasses.FrozenInstanceError):
        DEMO_READING.frame = 256
    assert (DEMO_READING.frame, DEMO_READING.faces, DEMO_AUGMENT) == (None, "off", None)


def test_run_py_prints_the_key_figures(capsys):
    _module("run").main(["--sizes", "256", "--n", "2", "--repeats", "1", "--scaling",
                         "--max-count", "1"])
    out = capsys.readouterr().out
    for text in ("Pillow decode", "speed-up", "spectrum+residual", "ns/pixel", "jobs=2"):
        assert text in out
