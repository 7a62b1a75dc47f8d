"""The `beatgrid` command: beats and beatgrids for audio files, and training outside the workflow.

Each subcommand is a :class:`Subcommand`: an ``add_<name>_arguments(parser)`` function whose
docstring is its help and which declares its options, and a ``run_<name>(args) -> exit code``
function; :data:`SUBCOMMANDS` lists them.

Exit codes: 0 everything done; 1 some inputs failed (the others were processed);
2 usage error (arguments, models, device), reported before any input is read.
A user error prints one ``beatgrid: error: ...`` line; ``--debug`` shows its traceback.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import DeviceUnavailableError, ModelFileError, UsageError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default (where it has one) and keeps the descriptions' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _common_options() -> argparse.ArgumentParser:
    """Options every subcommand takes (after its name, too)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug messages")
    return common


@dataclass(frozen=True)
class Subcommand:
    """``beatgrid <name>``: ``add_arguments(parser)`` declares its options and ``run(args)`` does
    the work and returns the exit code.

    The first paragraph of ``add_arguments``'s docstring is the one-line help of
    ``beatgrid --help``, the rest the description of ``beatgrid <name> --help`` (an
    ``add_arguments`` that names values known only at run time sets ``parser.description``).
    """

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]

    def add_to(self, commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
        """The subcommand's parser: the common options, its own, and the help formatter that shows defaults."""
        help_text, _, description = (inspect.getdoc(self.add_arguments) or "").partition("\n\n")
        parser = commands.add_parser(self.name, parents=[common], formatter_class=_HelpFormatter,
                                     help=help_text, description=description or None)
        self.add_arguments(parser)
        parser.set_defaults(handler=self.run)
        return parser


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


# ----------------------------------------------------------------------------- predict
def add_predict_arguments(predict: argparse.ArgumentParser) -> None:
    """beats, downbeats and a beatgrid for audio files and folders"""
    from .analysis import DEFAULT_MIN_CONFIDENCE
    from .batch import ACTIVATIONS_SUFFIX, DEFAULT_FORMATS, FORMATS, REKORDBOX_FILE
    from .methods import DEFAULT_METHOD, METHODS, Settings
    from .pretrained import DEFAULT_NAME, PREFIX

    methods = "\n".join(f"  {name:<11} {method.help}" for name, method in METHODS.items())
    predict.description = f"""\
Beats, downbeats and a beatgrid for each audio file (folders are searched recursively).
Outputs mirror the inputs' paths under --out, the audio file's name kept:
  <name>.beats   time<TAB>position per beat (1 = downbeat)
  <name>.json    fileName, bpm, downbeatOffset, duration, beatsPerBar, confidence
                 (bpm null and a reason for silence or no steady beat)
  <name>.jams    JAMS beat and tempo annotations
  {REKORDBOX_FILE}  one Rekordbox collection with every track's beatgrid
  <name>{ACTIVATIONS_SUFFIX}  the network's [T, 2] activations (--save-activations)

methods:
{methods}

exit codes: 0 all done; 1 some inputs failed (the others written); 2 usage error"""
    predict.add_argument("audio", nargs="+", metavar="AUDIO_OR_DIR",
                         help="audio files (wav, flac, ogg, mp3, m4a, aac, opus, ...) or folders")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument("--models", default=f"{PREFIX}{DEFAULT_NAME}",
                         help=f"a shipped model ({PREFIX}<name>, or the name alone) or a folder with "
                         "crnn/model.pt (and ltm/model.pt), e.g. results/models")
    predict.add_argument("--method", default=DEFAULT_METHOD, choices=list(METHODS), metavar="METHOD",
                         help="inference method (see above): " + ", ".join(METHODS))
    predict.add_argument("--format", default=",".join(DEFAULT_FORMATS),
                         help="comma-separated outputs: " + ",".join(FORMATS))
    predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                         help="auto: CUDA when torch has it, else CPU")
    predict.add_argument("--bpm-min", type=_positive_float, default=Settings.bpm_min, help="slowest tempo (BPM)")
    predict.add_argument("--bpm-max", type=_positive_float, default=Settings.bpm_max, help="fastest tempo (BPM)")
    predict.add_argument("--threshold", type=float, default=Settings.peak_threshold,
                         help="threshold of the peak-picking methods (crnn_peaks, ltm_peaks, ltm_online_peaks)")
    predict.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                         help="beatgrid confidence below which no tempo is reported (bpm null)")
    predict.add_argument("--skip-existing", action="store_true", help="skip files whose outputs all exist")
    predict.add_argument("--save-activations", action="store_true",
                         help=f"also write <name>{ACTIVATIONS_SUFFIX} (decode again with beatgrid.analysis.decode)")


def run_predict(args: argparse.Namespace) -> int:
    from .analysis import check_settings
    from .batch import parse_formats, predict_paths

    if args.bpm_min >= args.bpm_max:
        raise UsageError(f"--bpm-min ({args.bpm_min:g}) must be below --bpm-max ({args.bpm_max:g})")
    check_settings(args.method, args.bpm_min, args.bpm_max, args.min_confidence)
    result = predict_paths(
        args.audio,
        args.out,
        models=args.models,
        method=args.method,
        formats=parse_formats(args.format),
        device=args.device,
        skip_existing=args.skip_existing,
        save_activations=args.save_activations,
        debug=args.debug,
        bpm_min=args.bpm_min,
        bpm_max=args.bpm_max,
        peak_threshold=args.threshold,
        online_threshold=args.threshold,
        min_confidence=args.min_confidence,
    )
    summary = f"{len(result.written)} written, {len(result.skipped)} skipped, {len(result.failed)} failed"
    if not result.failed:
        log.info("%s: %s", args.out, summary)
        return EXIT_OK
    lines = "".join(f"\n  {message}" for _, message in result.failed)
    print(f"beatgrid: {len(result.failed)} of {result.n_inputs} inputs failed ({summary}):{lines}",
          file=sys.stderr)
    return EXIT_SOME_FAILED


# -------------------------------------------------------------------------- train-crnn
def add_train_crnn_arguments(train: argparse.ArgumentParser) -> None:
    """train the CRNN from mel/target stores outside the workflow (e.g. imported Beat This! spectrograms)

    Trains with the crnn: block of a config file on HDF5 stores such as those written by
    `python -m beatgrid.beat_this_import`; writes model.pt, history.csv and curves.png.
    Use the model in the workflow with crnn.init_from to fine-tune it on your own tracks.
    """
    train.add_argument("--mels", nargs="+", required=True, help="mel stores (.h5)")
    train.add_argument("--targets", nargs="+", required=True, help="target stores (.h5)")
    train.add_argument("--tracks", nargs="+", required=True,
                       help="track tables with track_id and split (train/val) columns (several are concatenated)")
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--config", default=None,
                       help="config file whose crnn: block to use (default: the package's config.yaml)")


def _concat_tracks(paths: list[str], out_dir: str) -> str:
    """One track table for training: the file itself, or several concatenated into out_dir."""
    if len(paths) == 1:
        return paths[0]
    import pandas as pd

    from .io import atomic_write

    table = pd.concat([pd.read_csv(p, dtype=str) for p in paths], ignore_index=True)
    return str(atomic_write(Path(out_dir) / "tracks.csv", lambda tmp: table.to_csv(tmp, index=False)))


def run_train_crnn(args: argparse.Namespace) -> int:
    from .training.crnn import train_crnn
    from .training.stores import TrainingStores
    from .workflow import load_config

    if args.config:
        _user_config(args.config)  # its keys are checked; its crnn: block is used as it is
    config = load_config(args.config)
    if "crnn" not in config:
        raise UsageError(f"--config {args.config}: no crnn: block")
    tracks_csv = _concat_tracks(args.tracks, args.out)
    train_crnn(TrainingStores(args.mels, args.targets, tracks_csv), config["crnn"], args.out)
    return EXIT_OK


# ------------------------------------------------------------------------------- check
def add_check_arguments(check: argparse.ArgumentParser) -> None:
    """verify every HDF5 store and model.pt of a results folder (--repair removes the corrupt ones)

    Opens every HDF5 store and model.pt below RESULTS, reads every array and compares the
    checksums written when the file was made. --repair deletes corrupt files and temporary
    files of killed jobs; the next `snakemake` run rebuilds exactly those and what depends on them.
    """
    check.add_argument("results", nargs="?", default="results", help="results folder of a workflow run")
    check.add_argument("--repair", action="store_true", help="delete corrupt and leftover temporary files")


def run_check(args: argparse.Namespace) -> int:
    from .integrity import check_results

    checks = check_results(args.results, repair=args.repair)
    for check in checks:
        if check.status not in ("ok", "unverified"):
            print(check)
    bad = [c for c in checks if c.status in ("corrupt", "leftover")]
    removed = [c for c in checks if c.status == "removed"]
    print(f"checked {len(checks)} files in {args.results}: "
          f"{sum(c.status == 'ok' for c in checks)} ok, {sum(c.status == 'unverified' for c in checks)} "
          f"without checksum, {len(bad)} corrupt or leftover, {len(removed)} removed")
    if removed:
        print("run snakemake again to rebuild the removed files")
    if bad:
        print(f"run `beatgrid check --repair {args.results}` to remove them")
    return EXIT_SOME_FAILED if bad else EXIT_OK


# ------------------------------------------------------------------------------- adapt
def add_adapt_arguments(adapt: argparse.ArgumentParser) -> None:
    """fine-tune a CRNN + LTM pair on your own annotated tracks (with a cross-validated estimate)

    Indexes your tracks (a label that disagrees with its audio is rejected with the reason),
    fine-tunes the starting pair on them and writes OUT/crnn/model.pt and OUT/ltm/model.pt,
    usable as `beatgrid predict --models OUT`. With --folds K, K models adapted on all but one
    fold each score the fold they did not see: OUT/cv/summary.csv (pretrained, adapted and
    librosa side by side), OUT/cv/learning_curve.csv and OUT/cv/report/index.html. Settings:
    the adapt: block of --config over the package's config.yaml. Re-running after a kill resumes.
    """
    source = adapt.add_mutually_exclusive_group(required=True)
    source.add_argument("--index", help="dataset_index.csv (dataset,audio_path,beats_path,has_downbeats[,group]; "
                        "paths relative to the CSV; tracks of one group share a fold)")
    source.add_argument("--audio", help="folder of audio files (with --annotations or --labels)")
    labels = adapt.add_mutually_exclusive_group()
    labels.add_argument("--annotations", help="folder of .beats, .jams or .txt beat files paired with --audio by name")
    labels.add_argument("--labels", help="folder of label JSON files (bpm, duration, downbeatOffset) paired with --audio")
    adapt.add_argument("--out", required=True, help="output folder")
    adapt.add_argument("--init", default=None, help="starting model: pretrained:<name> or a folder with "
                       "crnn/model.pt and ltm/model.pt (default: adapt.init_from of the config)")
    adapt.add_argument("--folds", type=int, default=None, help="cross-validation folds (>= 2); none: no estimate")
    adapt.add_argument("--dataset", default="mine", help="dataset name of the tracks (of --index: where its "
                       "rows name none; track ids start with it)")
    adapt.add_argument("--group-pattern", default=None, metavar="REGEX",
                       help="regular expression searched in each audio file's stem; its first capture group "
                            "names the track's group, and a group's tracks (a piece's mixes or edits) share a "
                            "cross-validation fold, e.g. '^(.*?) \\(' for 'Song (Radio Edit)' / 'Song (Extended Mix)'")
    adapt.add_argument("--config", default=None, help="config file laid over the package's config.yaml")


def _merged(base: dict, update: dict) -> dict:
    """``update`` laid over ``base``, nested blocks merged key by key (as Snakemake merges config files)."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def _user_config(path: str | None) -> dict:
    """The package's config.yaml with the file at ``path`` laid over it, checked against the
    workflow's schema (UsageError naming the file and the key: a misspelt key is never ignored)."""
    from .workflow import load_config, validate_config

    if not path:
        return load_config()
    if not Path(path).is_file():
        raise UsageError(f"--config {path}: file not found")
    config = _merged(load_config(), load_config(path))
    try:
        validate_config(config, path)
    except ValueError as error:
        raise UsageError(f"--config {error}") from None
    return config


def run_adapt(args: argparse.Namespace) -> int:
    from .adapt import REPLAY_DATASET, AdaptConfig, Adaptation, adapt_tracks, gain_lines, prepare_stores
    from .pretrained import resolve_model_file
    from .report import write_adapt_report
    from .workflow import load_config

    if args.audio and not (args.annotations or args.labels):
        raise UsageError("--audio needs --annotations DIR (.beats, .jams, .txt) or --labels DIR (label JSON)")
    if (args.annotations or args.labels) and not args.audio:
        raise UsageError("--annotations/--labels go with --audio DIR")
    config = _user_config(args.config)
    if args.init:
        config["adapt"] = {**config.get("adapt", {}), "init_from": args.init}
    if args.folds is not None:
        config["adapt"] = {**config.get("adapt", {}), "folds": args.folds}
    cfg = AdaptConfig.from_config(config)
    if not resolve_model_file(cfg.init_from, "crnn").is_file():  # stop before any audio is read
        raise UsageError(f"--init {cfg.init_from}: no crnn/model.pt there")
    if args.index:
        datasets = {args.dataset: {"format": "index_csv", "path": args.index}}
    elif args.annotations:
        datasets = {args.dataset: {"format": "beats_dir", "audio_dir": args.audio, "annotations_dir": args.annotations}}
    else:
        datasets = {args.dataset: {"format": "label_json", "audio_dir": args.audio, "labels_dir": args.labels}}
    if args.group_pattern:
        from .data.index import compile_group_pattern

        compile_group_pattern(args.group_pattern, "--group-pattern")  # before any audio is read
        datasets[args.dataset]["group_pattern"] = args.group_pattern
    out = Path(args.out)
    stores, _ = prepare_stores(datasets, config, out / "work", replay_share=cfg.replay)
    track_ids = adapt_tracks(stores.tracks, list(datasets))
    pool = adapt_tracks(stores.tracks, [REPLAY_DATASET]) if cfg.replay > 0 else []
    log.info("adapting on %d tracks (%d synthetic tracks to replay)", len(track_ids), len(pool))
    adaptation = Adaptation(stores, cfg, replay_pool=pool)
    if args.folds is not None:
        estimate = adaptation.cross_validate(track_ids, out / "cv")
        write_adapt_report(out / "cv", out / "cv" / "report")
        for line in gain_lines(estimate["gain"]):
            print(line)
    adaptation.adapt_models(track_ids, out)
    print(f"adapted models: {out / 'crnn' / 'model.pt'}, {out / 'ltm' / 'model.pt'}")
    if args.folds is not None:
        print(f"cross-validated estimate: {out / 'cv' / 'summary.csv'} (report: {out / 'cv' / 'report' / 'index.html'})")
    return EXIT_OK


# --------------------------------------------------------------------------------- main
#: Every subcommand, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("predict", add_predict_arguments, run_predict),
    Subcommand("train-crnn", add_train_crnn_arguments, run_train_crnn),
    Subcommand("check", add_check_arguments, run_check),
    Subcommand("adapt", add_adapt_arguments, run_adapt),
)

#: Errors caused by the user's arguments or files: one line, no traceback (without --debug).
#: (ValueError covers UsageError, InputFileError and the library's checks of its inputs.)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, ModelFileError, DeviceUnavailableError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beatgrid", description=__doc__.split("\n\n")[0],
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    for command in SUBCOMMANDS:
        command.add_to(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.debug:
        logging.getLogger("beatgrid").setLevel(logging.DEBUG)
    from .threads import cap_threads

    cap_threads(torch=True)  # never more compute threads than the CPUs this process may use
    try:
        return args.handler(args)
    except Exception as error:
        if args.debug or not isinstance(error, USER_ERRORS):
            raise
        print(f"beatgrid: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("beatgrid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
