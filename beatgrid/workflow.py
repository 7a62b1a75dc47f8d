"""Glue between the Snakefile and the library: config checks, the track list, shards, variants.

Everything here is cheap and runs while Snakemake builds the DAG, so it avoids heavy
imports (no torch, no librosa).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from stat import S_ISREG
from typing import Any

import pandas as pd

from .methods import METHODS, VARIANT_SEPARATOR

#: Demo tracks are rendered in fixed-size batches so that adding a track renders one batch.
DEMO_TRACKS_PER_JOB = 16

#: Columns of tracks.csv that decide what a per-shard feature job computes.
SHARD_MEMBER_COLUMNS = ("track_id", "audio_path", "annotation_path", "annotation_format", "has_downbeats", "duration_s")


def default_config_path() -> Path:
    """The default config (``config.yaml``): the workflow's, shipped inside the package.

    In a checkout ``beatgrid/config.yaml`` links to the repository's ``config.yaml`` (the one
    real file, which the Snakefile reads); a wheel carries a copy of it.
    """
    from importlib import resources

    return Path(str(resources.files("beatgrid") / "config.yaml"))


def config_schema_path() -> Path:
    """The JSON Schema of the config (``config.schema.yaml``), shipped inside the package as
    :func:`default_config_path` is (a link to the repository's file in a checkout)."""
    from importlib import resources

    return Path(str(resources.files("beatgrid") / "config.schema.yaml"))


def validate_config(config: dict[str, Any], source: str | os.PathLike) -> None:
    """Check a whole config against the schema, as the Snakefile does, for the command line's
    ``--config`` (an unknown or misspelt key must not be ignored). ValueError: one line that
    names ``source`` (the user's file), the key, its value and what is allowed."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(config_schema_path().read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ValueError(f"{source}: {config_error_line(error, schema)}")


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The YAML config at ``path`` (default: :func:`default_config_path`) as a dict."""
    import yaml

    path = Path(path) if path is not None else default_config_path()
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a config must be a mapping of blocks (crnn:, ltm:, ...)")
    return config


def check_config(config: dict[str, Any]) -> None:
    """Checks that JSON Schema cannot express; raises ValueError naming the key."""
    split = config["split"]
    if split["val_fraction"] + split["test_fraction"] >= 1:
        raise ValueError(
            "split.val_fraction + split.test_fraction must be < 1 "
            f"(got {split['val_fraction']} + {split['test_fraction']}): no track would be left to train on"
        )
    unknown = sorted(set(split["test_datasets"]) - set(config["datasets"]))
    if unknown:
        raise ValueError(f"split.test_datasets names datasets that are not in `datasets`: {unknown}")
    features = config["features"]
    if features["fmax"] > features["sr"] / 2:
        raise ValueError(
            f"features.fmax ({features['fmax']} Hz) is above the Nyquist frequency of features.sr "
            f"({features['sr']} Hz)"
        )
    if features["fmin"] >= features["fmax"]:
        raise ValueError(f"features.fmin ({features['fmin']}) must be below features.fmax ({features['fmax']})")
    if features["n_fft"] < features["hop_length"]:
        raise ValueError(
            f"features.n_fft ({features['n_fft']}) must be at least features.hop_length ({features['hop_length']})"
        )
    inference = config["inference"]
    for block in ("inference", "adapt"):
        unknown = [m for m in (config.get(block) or {}).get("methods", []) if m not in METHODS]
        if unknown:
            raise ValueError(f"{block}.methods: unknown inference methods {unknown}; known: {', '.join(METHODS)}")
    for bpm_min, bpm_max in itertools.product(_as_list(inference["bpm_min"]), _as_list(inference["bpm_max"])):
        if not 0 < bpm_min < bpm_max:
            raise ValueError(f"inference.bpm_min ({bpm_min}) must be positive and below inference.bpm_max ({bpm_max})")
    for name, source in config["datasets"].items():
        if source["format"] == "index_csv" and not Path(source["path"]).is_file():
            raise ValueError(f"datasets.{name}.path: index CSV not found: {source['path']}")
        if source["format"] == "synth" and "styles" in source:
            from .data.synth import ALL_STYLES

            unknown = sorted(set(source["styles"]) - set(ALL_STYLES))
            if unknown:
                raise ValueError(f"datasets.{name}.styles: unknown synth styles {unknown}; known: "
                                 f"{', '.join(ALL_STYLES)}")
        for key in ("audio_dir", "annotations_dir", "labels_dir"):
            if key in source and not Path(source[key]).is_dir():
                raise ValueError(f"datasets.{name}.{key}: folder not found: {source[key]}")
        if source.get("group_pattern"):
            from .data.index import compile_group_pattern

            compile_group_pattern(source["group_pattern"], f"datasets.{name}.group_pattern")


def config_error_line(error: BaseException, schema: dict[str, Any] | None = None) -> str:
    """One line for a config that fails the JSON Schema: the key path, the offending
    value and what is allowed, instead of the validator's dump of the whole schema.

    ``error`` is a ``jsonschema.ValidationError`` or an exception raised while handling
    one (Snakemake's ``validate`` wraps it in a WorkflowError); ``schema`` is the root
    schema, to name what a ``$ref`` allows. Anything else gives its first line.
    """
    import jsonschema

    found: BaseException | None = error
    while found is not None and not isinstance(found, jsonschema.ValidationError):
        found = found.__cause__ or found.__context__
    if found is None:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    error = found
    path = ".".join(str(p) for p in error.absolute_path) or "config"
    sub = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(sub.get("properties", {}))
        extra = [k for k in error.instance if k not in known]
        key = extra[0] if extra else "?"
        return (f"{path}.{key}: unknown key (value {_short(error.instance.get(key))}); "
                f"allowed keys: {', '.join(known)}")
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"{path}: missing key {', '.join(missing)}"
    if "propertyNames" in error.schema_path:
        rule = f"match {sub['pattern']}" if "pattern" in sub else f"be {_allowed(sub, schema)}"
        return f"{path}: the name {_short(error.instance)} is not allowed; names must {rule}"
    return f"{path} = {_short(error.instance)}: must be {_allowed(sub, schema)}"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TYPE_WORDS = {"number": "a number", "integer": "an integer", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null"}


def _allowed(sub: Any, root: dict[str, Any] | None, depth: int = 0) -> str:
    """What a (sub)schema allows, in words: types, enums, bounds, ``$ref``s resolved."""
    if not isinstance(sub, dict) or depth > 5:
        return "valid"
    if "$ref" in sub and root is not None and sub["$ref"].startswith("#/"):
        target: Any = root
        for part in sub["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _allowed({**target, **{k: v for k, v in sub.items() if k != "$ref"}}, root, depth + 1)
    for key in ("oneOf", "anyOf"):
        if key in sub:
            return " or ".join(_allowed(s, root, depth + 1) for s in sub[key])
    if "enum" in sub:
        return "one of " + ", ".join(_short(v) for v in sub["enum"])
    if "const" in sub:
        return _short(sub["const"])
    types = sub.get("type")
    words = [_TYPE_WORDS.get(t, t) for t in (types if isinstance(types, list) else [types] if types else [])]
    text = " or ".join(words) or "a value"
    if "items" in sub and words == ["a list"]:
        text += f" of ({_allowed(sub['items'], root, depth + 1)})"
    bounds = [f"{op} {sub[key]}" for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                   ("maximum", "<="), ("exclusiveMaximum", "<"))
              if key in sub]
    if "minItems" in sub:
        bounds.append(f"at least {sub['minItems']} item(s)")
    if "minProperties" in sub:
        bounds.append(f"at least {sub['minProperties']} entry(ies)")
    if "pattern" in sub:
        bounds.append(f"matching {sub['pattern']}")
    return ", ".join([text, *bounds])


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def demo_batches(source: dict[str, Any]) -> dict[str, list[int]]:
    """Batch name -> track indices rendered by that batch job of a synthetic dataset.

    Batches are whole blocks of ``tracks_per_job`` indices, whatever ``n_tracks`` is (the
    index keeps the first ``n_tracks``): a track's batch and its batch's contents never
    change, so adding a track never re-renders, and so never re-runs, its neighbours.
    """
    per_job = int(source.get("tracks_per_job", DEMO_TRACKS_PER_JOB))
    n_batches = -(-int(source["n_tracks"]) // per_job)
    return {f"{b:03d}": list(range(b * per_job, (b + 1) * per_job)) for b in range(n_batches)}


def _candidate_source_files(source: dict[str, Any]) -> list[str]:
    """The files an external dataset may read (not checked for existence): an
    ``index_csv``'s CSV and every path it lists, or the files under a dataset's folders.
    Plain strings: building 20,000 ``Path`` objects cost a tenth of a second of planning."""
    fmt = source["format"]
    if fmt == "index_csv":
        from .data.dataset_index import read_dataset_index

        csv_path = str(source["path"])
        try:
            rows = read_dataset_index(csv_path)
        except (OSError, ValueError):  # a missing or broken CSV is reported by the index job itself
            return [csv_path]
        return [csv_path, *(p for row in rows for p in (row.audio_path, row.beats_path) if p)]
    folders = [Path(source["audio_dir"]), Path(source["annotations_dir" if fmt == "beats_dir" else "labels_dir"])]
    from .annotations import ANNOTATION_SUFFIXES
    from .audio import AUDIO_EXTENSIONS  # here: the training env's jobs import this module without soundfile

    suffixes = AUDIO_EXTENSIONS + tuple(ANNOTATION_SUFFIXES) + (".json",)
    return [str(p) for folder in folders if folder.is_dir() for p in folder.rglob("*") if p.suffix.lower() in suffixes]


def dataset_source_inputs(source: dict[str, Any]) -> list[str]:
    """The files of an external dataset that the index declares as inputs: the index CSV
    (an ``index_csv`` dataset's own file); every other file is followed through
    :func:`dataset_sources_digest`."""
    return [source["path"]] if source["format"] == "index_csv" else []


def files_digest(paths: Iterable[str]) -> str:
    """BLAKE2b over path, size and modification time (ns) of each of ``paths`` (sorted,
    deduplicated; a missing path counts as missing), one ``stat`` per file.

    As a ``params:`` entry it re-runs a job whenever one of the files is added, edited,
    touched or removed, as a changed input would, without declaring the files as inputs:
    each declared input costs Snakemake planning time (at 10,000 tracks the audio and
    annotation inputs of the per-shard jobs took a third of `snakemake -n`).
    """
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(set(paths)):
        try:
            stat = os.stat(path)  # this runs while Snakemake plans
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
            continue
        if S_ISREG(stat.st_mode):
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def dataset_sources_digest(sources: Iterable[dict[str, Any]]) -> str:
    """:func:`files_digest` of every file of the external datasets ``sources``
    (:func:`_candidate_source_files`), a ``params:`` entry of the index, so adding, editing
    or removing any of them re-runs the index (a removed one is then rejected with its
    reason instead of stopping the plan)."""
    return files_digest(p for source in sources for p in _candidate_source_files(source))


@dataclass(frozen=True)
class ShardInputs:
    """What one shard's jobs read: its members (a ``params:`` entry) and their files, whose
    versions (:func:`files_digest`) are ``params:`` entries too."""

    members: str
    audio_paths: list[str]
    annotation_paths: list[str]

    @cached_property
    def audio_version(self) -> str:
        """:func:`files_digest` of the audio files, once per tracks.csv version and process
        (three rules of each shard read it)."""
        return files_digest(self.audio_paths)

    @cached_property
    def annotations_version(self) -> str:
        """:func:`files_digest` of the annotation files."""
        return files_digest(self.annotation_paths)


def shard_inputs(tracks: pd.DataFrame) -> dict[str, ShardInputs]:
    """Shard -> its members as a stable JSON string (only the columns that decide its
    feature jobs, so a changed split re-runs nothing) and its audio and annotation files."""
    members: dict[str, list[dict[str, Any]]] = {}
    for row in tracks.sort_values("track_id")[[*SHARD_MEMBER_COLUMNS, "shard"]].to_dict(orient="records"):
        members.setdefault(row.pop("shard"), []).append(row)
    return {
        shard: ShardInputs(
            json.dumps(rows, sort_keys=True),
            sorted(r["audio_path"] for r in rows),
            sorted(r["annotation_path"] for r in rows),
        )
        for shard, rows in sorted(members.items())
    }


@lru_cache(maxsize=8)
def _read_shards_cached(path: str, mtime_ns: int) -> dict[str, ShardInputs]:
    from .data.tracks import read_index

    return shard_inputs(read_index(path))


def read_shards(path: str | Path) -> dict[str, ShardInputs]:
    """:func:`shard_inputs` of tracks.csv, built once per file version.

    Planning calls this once per job; filtering the table per call made planning
    grow as shards x tracks (15 s at 10,000 tracks).
    """
    path = str(path)
    return _read_shards_cached(path, Path(path).stat().st_mtime_ns)


def _format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def inference_variants(inference: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Method variant name -> (base method, settings).

    A setting given as a list expands into one variant per value (the grid over all
    listed settings a method's decoder reads, :attr:`beatgrid.methods.Method.settings`).
    Variant names are `base@key=value,...`, and the plain base name when nothing is listed.
    """
    variants: dict[str, dict[str, Any]] = {}
    for method in inference["methods"]:
        keys = METHODS[method].settings
        listed = [k for k in keys if isinstance(inference[k], (list, tuple)) and len(inference[k]) > 1]
        grids = [_as_list(inference[k]) for k in keys]
        for values in itertools.product(*grids):
            settings = dict(zip(keys, values))
            if "bpm_min" in settings and settings["bpm_min"] >= settings["bpm_max"]:
                continue
            suffix = ",".join(f"{k}={_format_value(settings[k])}" for k in listed)
            name = f"{method}{VARIANT_SEPARATOR}{suffix}" if suffix else method
            variants[name] = {"method": method, "source": METHODS[method].source, "settings": settings}
    return variants


def print_summary(path: str | Path) -> None:
    """Print the evaluation's Markdown summary at the end of a successful run."""
    path = Path(path)
    if path.is_file():
        print("\n" + path.read_text())


@contextmanager
def workflow_job(smk: Any, *, torch: bool = False) -> Iterator[int]:
    """The one entry of every workflow script: log into the job's log file and cap compute
    threads at the job's ``threads`` and the CPUs the process may use; yields that number.

    ``torch=True`` for jobs that run torch (it is imported to cap its thread pools).
    """
    with log_to(smk.log[0]):
        from .threads import cap_threads

        yield cap_threads(smk.threads, torch=torch)


class log_to:
    """Context manager for workflow scripts: copy stdout/stderr and logging into a job's log file.

    Progress bars still reach the terminal; the log file keeps everything for later reading.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __enter__(self) -> "log_to":
        import logging
        import sys

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", buffering=1)
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, self._file)
        sys.stderr = _Tee(sys.stderr, self._file)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s", stream=sys.stderr, force=True
        )
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import sys
        import traceback

        if exc is not None:
            traceback.print_exception(exc_type, exc, tb, file=self._file)
        sys.stdout, sys.stderr = self._streams
        self._file.close()


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return self.streams[0].isatty()

    def fileno(self) -> int:
        return self.streams[0].fileno()
