"""The library's architecture, enforced: layers that only point down, and functions short enough to read.

The import graph is the one docs/architecture.md shows (``docs/generate_architecture.py``
reads every import, function-level ones included). A module may import from its own layer
or any layer below it; a new module fails here until it is given a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.docs_generator import load_generator

REPO = Path(__file__).resolve().parents[1]

# Lowest first. An entry names a module or a package (then it covers the package's modules
# unless a longer entry names one of them).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundations", ("errors", "io", "integrity", "provenance", "threads", "device", "pretrained")),
    # decoding.peaks (activation_pair, calibrate, pick_peaks) sits with the frame arrays, below the
    # other decoders: it imports nothing of beatgrid, the LTM's activation augmentation shapes its
    # arrays with it and training validates by picking peaks; dbn/grid/streaming build on it.
    ("inputs and frame arrays", ("audio", "annotations", "targets", "decoding.peaks", "data")),
    ("features", ("features", "beat_this_import")),
    ("models", ("models",)),
    ("training", ("training",)),
    ("decoding", ("decoding",)),  # the package (its __init__ imports nothing) and dbn, grid, streaming
    # Every activation store is written in activations: the CRNN's (also out of fold) and the LTM's,
    # whose pass over the CRNN's activations is decoding.streaming's.
    ("activations", ("activations",)),
    ("methods", ("methods", "inference", "predictions")),
    ("evaluation", ("evaluation", "peers")),
    # export (Rekordbox XML, JAMS) writes an Analysis / a Beatgrid: it sits with its callers.
    ("applications", ("analysis", "batch", "adapt", "report", "export")),
    ("entry points", ("workflow", "cli", "")),  # "" is the package itself: its __init__ re-exports analyze
)

MAX_FUNCTION_LINES = 120
# The synthesizer's instrument table: one branch of literal sound parameters per instrument,
# data more than logic; splitting it would scatter one table over several functions.
LONG_FUNCTIONS_ALLOWED = {("beatgrid/data/synth.py", "_make_instrument")}


@pytest.fixture(scope="module")
def modules():
    return load_generator().read_modules()


def layer_of(module: str) -> int | None:
    """Index in LAYERS of the longest entry that names ``module`` (``beatgrid.x.y``) or a package above it."""
    name = module.removeprefix("beatgrid").removeprefix(".")
    best: tuple[int, int] | None = None  # (length of the entry, layer)
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if name == entry or (entry and name.startswith(entry + ".")):
                if best is None or len(entry) > best[0]:
                    best = (len(entry), index)
    return None if best is None else best[1]


def test_every_module_has_a_layer(modules):
    missing = [m.name for m in modules if layer_of(m.name) is None]
    assert not missing, f"give these modules a layer in tests/test_architecture.py: {missing}"


def test_modules_import_only_from_their_layer_or_below(modules):
    upward = []
    for m in modules:
        own = layer_of(m.name)
        for imported in m.imports:
            theirs = layer_of(imported)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{m.name} ({LAYERS[own][0]}) imports {imported} ({LAYERS[theirs][0]})")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_layer_of_prefers_the_longest_entry():
    assert LAYERS[layer_of("beatgrid.io")][0] == "foundations"
    assert LAYERS[layer_of("beatgrid.export.jams")][0] == "applications"
    assert LAYERS[layer_of("beatgrid.decoding.peaks")][0] == "inputs and frame arrays"
    assert LAYERS[layer_of("beatgrid.data.store")][0] == "inputs and frame arrays"
    assert layer_of("beatgrid.training.loop") > layer_of("beatgrid.models")
    assert layer_of("beatgrid.decoding.peaks") < layer_of("beatgrid.training") < layer_of("beatgrid.decoding.dbn")
    assert layer_of("beatgrid.dataset") is None  # not data.*: entries match whole names only


def long_functions(root: Path = REPO) -> list[str]:
    """``path:line name (n lines)`` of each function or method of beatgrid/ over the limit."""
    found = []
    for path in sorted((root / "beatgrid").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=relative)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n_lines = node.end_lineno - node.lineno + 1
                if n_lines > MAX_FUNCTION_LINES and (relative, node.name) not in LONG_FUNCTIONS_ALLOWED:
                    found.append(f"{relative}:{node.lineno} {node.name} ({n_lines} lines)")
    return found


def test_no_library_function_is_longer_than_the_limit():
    assert not long_functions(), f"split these (limit {MAX_FUNCTION_LINES} lines):\n" + "\n".join(long_functions())


def test_a_long_function_is_named(tmp_path):
    (tmp_path / "beatgrid").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "beatgrid" / "long.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path) == [f"beatgrid/long.py:5 long ({MAX_FUNCTION_LINES + 1} lines)"]
