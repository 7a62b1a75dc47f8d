"""Regenerate the generated sections of docs/architecture.md from the tree.

    python docs/generate_architecture.py          # rewrite the page (runs Snakemake, ~1 min)
    python docs/generate_architecture.py --check  # exit 1 naming modules or rules the page misses

Two sections are generated, between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->``; the rest of the page is written by hand:

- ``modules``: one line per module of ``beatgrid/``: the first paragraph of its docstring,
  its public names (``__all__``, else its public top-level functions and classes) and the
  beatgrid modules it imports (read with ``ast``; nothing is imported).
- ``dag``: the rule graph of the default config with the adapt stage switched on, from
  ``snakemake --rulegraph`` after the index has run on a six-track demo (behind the index
  checkpoint, the graph is known only once the index exists), and one line per rule of the
  workflow files with the first line of its docstring.

`tests/test_docs.py` fails when a module or rule of the tree is missing from the page, or the
page names one that no longer exists.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "beatgrid"
PAGE = REPO / "docs" / "architecture.md"
WORKFLOW_FILES = ("Snakefile", "rules/*.smk")
COMMAND = "python docs/generate_architecture.py"
# The DAG is drawn for the default config plus these settings (a small demo, the adapt stage on).
DAG_CONFIG = """\
datasets:
  demo: {format: synth, n_tracks: 6, duration_s: 5, seed: 0, tracks_per_job: 6}
adapt: {datasets: [demo], folds: 2, learning_curve: [2], learning_curve_folds: 1}
"""
DAG_TARGETS = ("all", "adapt")


@dataclass(frozen=True)
class ModuleInfo:
    """One module of the package: path relative to the repository, summary, public names, imports."""

    path: str
    name: str
    summary: str
    public: tuple[str, ...]
    imports: tuple[str, ...]


@dataclass(frozen=True)
class RuleInfo:
    """One rule (or checkpoint) of the workflow files."""

    name: str
    kind: str
    path: str
    summary: str


# --------------------------------------------------------------------------- reading the tree


def module_name(path: Path, root: Path = REPO) -> str:
    """`beatgrid/data/store.py` -> `beatgrid.data.store`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_paths(root: Path = REPO) -> list[Path]:
    """Every module of the package, in path order."""
    return sorted(p for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)


def first_paragraph(doc: str | None) -> str:
    """The docstring's first paragraph on one line (empty without a docstring)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def public_names(tree: ast.Module) -> tuple[str, ...]:
    """``__all__`` when the module defines it as a literal, else its public top-level defs."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            try:
                return tuple(n for n in ast.literal_eval(node.value) if not n.startswith("__"))
            except ValueError:
                break
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return tuple(n.name for n in tree.body if isinstance(n, defs) and not n.name.startswith("_"))


def imported_modules(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> tuple[str, ...]:
    """The package's modules that the module imports anywhere (functions included), sorted."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import mod` depends on pkg.mod; `from mod import name` on mod
            candidates = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        else:
            continue
        for candidate in candidates:
            # the longest known module that the import names (`beatgrid.data.store.X` -> data.store)
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name and candidate != PACKAGE:
                found.add(candidate)
    return tuple(sorted(found))


def read_modules(root: Path = REPO) -> list[ModuleInfo]:
    """What the page's module table says about each module of the tree."""
    paths = module_paths(root)
    known = {module_name(p, root) for p in paths}
    modules = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        name = module_name(path, root)
        modules.append(
            ModuleInfo(
                path=path.relative_to(root).as_posix(),
                name=name,
                summary=first_paragraph(ast.get_docstring(tree)),
                public=public_names(tree),
                imports=imported_modules(tree, name, path.name == "__init__.py", known),
            )
        )
    return modules


RULE_RE = re.compile(r'^(rule|checkpoint) (\w+):\n(?:    (?:"""|\'\'\')(.*?)(?:"""|\'\'\'))?', re.M | re.S)


def read_rules(root: Path = REPO) -> list[RuleInfo]:
    """Every rule and checkpoint of the workflow files, in file order."""
    rules = []
    for pattern in WORKFLOW_FILES:
        for path in sorted(root.glob(pattern)):
            for match in RULE_RE.finditer(path.read_text(encoding="utf-8")):
                kind, name, doc = match.groups()
                rules.append(RuleInfo(name, kind, path.relative_to(root).as_posix(), first_paragraph(doc)))
    return rules


def rule_graph(root: Path = REPO) -> list[tuple[str, str]]:
    """(upstream rule, downstream rule) edges of `snakemake --rulegraph` for DAG_CONFIG."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="beatgrid-dag-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(DAG_CONFIG)
        base = [sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "-d", tmp, "--cores", "2"]
        for args in (["index"], [*DAG_TARGETS, "--rulegraph", "dot"]):
            result = subprocess.run([*base, *args, "--configfile", str(config)], capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise SystemExit(f"snakemake {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    dot = result.stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, re.M))
    edges = {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)}
    return sorted(edges)


# --------------------------------------------------------------------------- writing the page


def _code(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_modules(modules: list[ModuleInfo]) -> str:
    """The module table: one line per module."""
    lines = ["| module | what it holds | public names | imports from beatgrid |", "|---|---|---|---|"]
    for m in modules:
        imports = _code(tuple(i.removeprefix(f"{PACKAGE}.") for i in m.imports))
        lines.append(f"| `{m.path}` | {_cell(m.summary)} | {_code(m.public)} | {imports} |")
    return "\n".join(lines)


def render_dag(rules: list[RuleInfo], edges: list[tuple[str, str]]) -> str:
    """A Mermaid flowchart of the rule graph, then one line per rule."""
    in_graph = {name for edge in edges for name in edge}
    kinds = {r.name: r.kind for r in rules}
    targets = " ".join(f"`{t}`" for t in DAG_TARGETS)
    lines = [
        f"Rule graph of the default config with the adapt stage on (targets {targets}); an arrow",
        "points from the rule that writes a file to the rule that reads it.",
        "",
        "```mermaid",
        "flowchart TD",
    ]
    for name in sorted(in_graph):
        lines.append(f"    {name}{{{{{name}}}}}" if kinds.get(name) == "checkpoint" else f"    {name}[{name}]")
    lines += [f"    {a} --> {b}" for a, b in edges]
    lines += [
        "```",
        "",
        "| rule | file | makes | reads the outputs of |",
        "|---|---|---|---|",
    ]
    for r in rules:
        upstream = sorted(a for a, b in edges if b == r.name)
        label = f"`{r.name}` (checkpoint)" if r.kind == "checkpoint" else f"`{r.name}`"
        if r.name not in in_graph:
            reads = "not in this graph (another config or a stage target)"
        else:
            reads = _code(tuple(upstream)) or "no rule's output (its params, or the dataset files the index lists)"
        lines.append(f"| {label} | `{r.path}` | {_cell(r.summary)} | {reads} |")
    return "\n".join(lines)


def replace_section(page: str, name: str, body: str) -> str:
    """The page with the text between the section's markers replaced by `body`."""
    begin, end = f"<!-- BEGIN GENERATED: {name} -->", f"<!-- END GENERATED: {name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(page):
        raise SystemExit(f"{PAGE}: no '{begin}' ... '{end}' markers")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", page)


def section(page: str, name: str) -> str:
    """The text between the section's markers (empty when they are missing)."""
    found = re.search(rf"<!-- BEGIN GENERATED: {name} -->(.*?)<!-- END GENERATED: {name} -->", page, re.S)
    return found.group(1) if found else ""


def missing_from_page(page: str, root: Path = REPO) -> list[str]:
    """What the page and the tree disagree on: modules and rules missing or gone, one line each."""
    problems = []
    listed_modules = set(re.findall(r"^\| `([\w/]+\.py)` \|", section(page, "modules"), re.M))
    tree_modules = {m.relative_to(root).as_posix() for m in module_paths(root)}
    problems += [f"module {p} is not on the page" for p in sorted(tree_modules - listed_modules)]
    problems += [f"module {p} is on the page but not in the tree" for p in sorted(listed_modules - tree_modules)]
    listed_rules = set(re.findall(r"^\| `(\w+)`(?: \(checkpoint\))? \|", section(page, "dag"), re.M))
    tree_rules = {r.name for r in read_rules(root)}
    problems += [f"rule {r} is not on the page" for r in sorted(tree_rules - listed_rules)]
    problems += [f"rule {r} is on the page but not in the workflow" for r in sorted(listed_rules - tree_rules)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report what the page misses (no Snakemake)")
    args = parser.parse_args(argv)
    page = PAGE.read_text(encoding="utf-8")
    if args.check:
        problems = missing_from_page(page)
        for problem in problems:
            print(f"{PAGE.relative_to(REPO)}: {problem}; run `{COMMAND}`", file=sys.stderr)
        return 1 if problems else 0
    page = replace_section(page, "modules", render_modules(read_modules()))
    page = replace_section(page, "dag", render_dag(read_rules(), rule_graph()))
    PAGE.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
