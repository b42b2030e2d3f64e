"""The `gpaco` command: train, eval, convert, export, predict, config, recipes, report,
prepare."""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import threading
from pathlib import Path

from gpaco.version import __version__
from gpaco import distributed as gdist
from gpaco.data.segmentation import PREPARERS
from gpaco import run as C
from gpaco import tasks
from gpaco.train import run_dir as rd
from gpaco.tasks.classification.convert import write_converted
from gpaco.tasks.classification.evaluate_files import evaluate_files
from gpaco.tasks.classification.restore import export_file
from gpaco.tasks.model_summary import parameter_line
from gpaco.tasks.classification.robustness_eval import SUITE_CHOICES, SuiteRun, evaluate_robustness
from gpaco.tasks.classification.report import write_report
from gpaco.errors import UserError
from gpaco.messages import unknown_command
from gpaco.tasks.classification.longtail_eval import Request
from gpaco.tasks.classification.longtail_eval import run as longtail_eval
from gpaco.tasks.classification.metrics import result_lines
from gpaco.tasks.classification.robustness import CORRUPTIONS, PROTOCOLS
from gpaco.tasks.segmentation.authors import (evaluate_authors_segmentation,
                                             write_converted_segmentation)

# Tasks whose authors' files `gpaco eval --recipe` / `gpaco convert --recipe` read with their
# own (evaluate, convert) pair; classification's are evaluate_files / write_converted.
AUTHORS_FILES = {"segmentation": (evaluate_authors_segmentation, write_converted_segmentation)}

EPILOG = "Overrides are key=value pairs: a dotted path (optim.lr=0.1) or a unique leaf (lr=0.1)."


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpaco", description="PaCo / GPaCo training and evaluation.")
    p.add_argument("--version", action="version", version=f"gpaco {__version__}")
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train a model from a recipe or config", epilog=EPILOG)
    src = t.add_mutually_exclusive_group()
    src.add_argument("--recipe", help="a shipped recipe (see `gpaco recipes`); default: default")
    src.add_argument("--config", help="a YAML config file (may say `base: RECIPE`)")
    t.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (or the config's output.dir)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("overrides", nargs="*", metavar="key=value")
    e = sub.add_parser("eval", help="evaluate a checkpoint, an authors' file or an ensemble",
                       epilog=EPILOG)
    e.add_argument("--checkpoint", action="append", default=[],
                   help="a gpaco checkpoint or an authors' file; repeat for an ensemble "
                        "(the plain sum of the members' logits)")
    e.add_argument("--recipe", help="architecture and data of authors' files (no gpaco config)")
    e.add_argument("--split", choices=("test", "val"),
                   help="classification: test (default) or val; segmentation: its dataset's "
                        "one labelled held-out split (the default)")
    e.add_argument("--save-logits", metavar="FILE.npy",
                   help="save the raw logits (N, C); the labels go to FILE.labels.npy")
    lt = e.add_argument_group("long-tail evaluation (docs/evaluation.md); results go to --out "
                              "(default: eval-CHECKPOINT/ beside the checkpoint)")
    lt.add_argument("--logits", action="append", default=[], metavar="FILE.npy",
                    help="test logits saved by --save-logits, instead of --checkpoint; repeat "
                         "to compare models")
    lt.add_argument("--posthoc", action="store_true",
                    help="fit temperature scaling and logit adjustment on the validation split "
                         "and report test before / after")
    lt.add_argument("--val-logits", metavar="FILE.npy",
                    help="validation logits (gpaco eval --split val --save-logits) for --posthoc")
    lt.add_argument("--prior-shift", action="store_true",
                    help="top-1 on forward / backward long-tailed test subsets (ratios 2-50), "
                         "also after adjusting to the known and the EM-estimated test prior")
    rob = e.add_argument_group("robustness suites (a 1000-class ImageNet model)")
    rob.add_argument("--suite", choices=SUITE_CHOICES,
                     help="evaluate on ImageNet-C (15 corruptions x 5 severities, both mCEs), "
                          "-R (200-class mask), -Sketch, the clean val folders, or all three "
                          "(--data-root then holds imagenet-c/, imagenet-r/, sketch/)")
    rob.add_argument("--data-root", type=Path, metavar="DIR", help="the suite's folder")
    rob.add_argument("--protocol", choices=PROTOCOLS, default="authors",
                     help="authors: Resize 256 + CenterCrop 224 everywhere (default); "
                          "hendrycks: ImageNet-C images only centre-cropped")
    rob.add_argument("--partial", action="store_true",
                     help="evaluate what exists; the results say what was left out")
    rob.add_argument("--corruptions", metavar="a,b",
                     help="ImageNet-C corruptions to evaluate (a subset needs --partial)")
    rob.add_argument("--interpolation", choices=("bicubic", "bilinear"),
                     help="resize filter (default: bicubic for ViTs, bilinear otherwise)")
    rob.add_argument("--batch-size", type=int, default=100)
    rob.add_argument("--workers", type=int, default=4)
    rob.add_argument("--device", default="auto")
    rob.add_argument("--out", type=Path, metavar="DIR",
                     help="results folder (default: robustness/ beside the checkpoint; for the "
                          "long-tail evaluation eval-CHECKPOINT/)")
    rob.add_argument("--on-bad-image", choices=("error", "skip"), default="error",
                     help="an unreadable image: stop naming it (default), or leave it out "
                          "(the results list it), as training's data.on_bad_image")
    rob.add_argument("--overwrite", action="store_true",
                     help="replace the results an earlier evaluation wrote in the folder")
    e.add_argument("overrides", nargs="*", metavar="key=value")
    v = sub.add_parser("convert", help="write an authors' file as a gpaco checkpoint",
                       epilog=EPILOG)
    v.add_argument("file")
    v.add_argument("--recipe", help="the recipe that gives the architecture (default: the "
                                    "one the file names)")
    v.add_argument("--out", required=True, metavar="gpaco.pt")
    v.add_argument("overrides", nargs="*", metavar="key=value")
    x = sub.add_parser("export", help="write a model's backbone (+ classifier) as a plain "
                                      "torchvision / timm state dict")
    x.add_argument("checkpoint")
    x.add_argument("--out", required=True, metavar="backbone.pth")
    x.add_argument("--recipe", help="architecture of an authors' file")
    x.add_argument("--no-classifier", action="store_true", help="the backbone only")
    d = sub.add_parser("predict", help="top-k classes of images (files or folders) as CSV")
    d.add_argument("--checkpoint", required=True, action="append",
                   help="a gpaco checkpoint or an authors' file; repeat for an ensemble")
    d.add_argument("--recipe", help="architecture and test input of authors' files")
    d.add_argument("paths", nargs="+", metavar="PATH")
    d.add_argument("--out", default="predictions.csv", metavar="preds.csv",
                   help="the CSV to write (default: predictions.csv); an existing file is "
                        "replaced only with --overwrite")
    d.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    d.add_argument("--on-bad-image", choices=("error", "skip"), default="error",
                   help="an unreadable image: stop naming it (default), or leave it out and "
                        "name it, as training's data.on_bad_image")
    d.add_argument("--topk", type=int, default=5)
    d.add_argument("--device", default="auto")
    c = sub.add_parser("config", help="print the resolved config of a recipe or file (YAML)",
                       epilog=EPILOG)
    csrc = c.add_mutually_exclusive_group()
    csrc.add_argument("--recipe", help="a shipped recipe (default: default)")
    csrc.add_argument("--config", help="a YAML config file")
    c.add_argument("overrides", nargs="*", metavar="key=value")
    sub.add_parser("recipes", help="list the shipped recipes")
    pr = sub.add_parser("prepare", help="convert a dataset's release files into the layout "
                                        "gpaco reads (writes beside the images, deletes nothing)")
    pr.add_argument("dataset", choices=sorted(PREPARERS))
    pr.add_argument("sources", nargs="+", metavar="SOURCE",
                    help="; ".join(f"{k}: {' '.join(v[1])}" for k, v in PREPARERS.items()))
    r = sub.add_parser("report", help="markdown summary of a run directory")
    r.add_argument("run_dir")
    return p


def _train(args: argparse.Namespace) -> None:
    resume = args.resume
    if isinstance(resume, str) and "=" in resume and not Path(resume).exists():
        args.overrides.insert(0, resume)  # `--resume lr=0.1`: an override, not a folder
        resume = True
    if isinstance(resume, str):
        if args.recipe or args.config:  # the run's own config.yaml decides, not a recipe
            given = "--recipe" if args.recipe else "--config"
            raise UserError(f"--resume {resume} continues the run from its own config.yaml; "
                            f"{given} would be ignored: drop it (key=value overrides apply), "
                            f"or start a new run without --resume")
        folder = Path(resume)
    else:
        cfg = C.load_config(args.recipe, args.config, args.overrides)
        folder = Path(cfg.output.dir or Path("runs") / cfg.name)
    if resume:  # always the run's own config (+ the overrides given now), not the recipe's
        if folder.is_file():
            raise UserError(f"--resume takes a run folder (the one holding config.yaml and "
                            f"last.pt), not the file {folder}"
                            + (f": --resume {folder.parent}" if (folder.parent / rd.CONFIG)
                               .is_file() else "; to start from its weights: "
                               f"model.pretrained={folder}"))
        if not (folder / rd.CONFIG).is_file():
            raise UserError(f"nothing to resume: {folder / rd.CONFIG} does not exist")
        cfg = C.load_saved(folder / rd.CONFIG, args.overrides)
    cfg.output.dir = str(folder.resolve())
    C.absolute_paths(cfg)
    gdist.init_from_env(cfg.train.device)
    is_main = gdist.is_main()  # asked before shutdown(), after which every process is "rank 0"
    try:
        summary = C.train(cfg, folder, resume=bool(resume), overwrite=args.overwrite)
    finally:
        gdist.shutdown()
    if is_main:
        print(tasks.task_of(cfg).final_line(summary["last"]))
        print(f"run directory: {folder}")


def _recipe(name: str | None, overrides: list[str] = ()) -> C.Config | None:
    return C.load_config(name, overrides=overrides) if name else None


def _robustness(args: argparse.Namespace) -> None:
    if args.data_root is None:
        raise UserError("--suite needs --data-root DIR (the benchmark's folder)")
    if args.save_logits or args.split not in (None, "test"):
        raise UserError("--suite evaluates its own data: drop --split / --save-logits")
    run = SuiteRun(args.suite, args.data_root, args.protocol, args.partial,
                   args.corruptions.split(",") if args.corruptions else CORRUPTIONS,
                   args.interpolation, args.batch_size, args.workers, args.device, args.out,
                   args.on_bad_image, args.overwrite)
    for result, json_path, md_path in evaluate_robustness(
            args.checkpoint, run, args.overrides, _recipe(args.recipe, args.overrides)):
        print(result.to_markdown())
        print(f"wrote {json_path} and {md_path}")


# The robustness options (name: default); given without --suite they would be ignored.
SUITE_OPTIONS = {"data_root": None, "protocol": "authors", "partial": False, "corruptions": None,
                 "interpolation": None, "batch_size": 100, "workers": 4, "device": "auto",
                 "out": None, "on_bad_image": "error", "overwrite": False}


def _longtail(args: argparse.Namespace) -> None:
    if args.save_logits or args.split not in (None, "test"):
        raise UserError("--posthoc / --prior-shift / --logits save their logits in --out and "
                        "use both splits: drop --split / --save-logits")
    request = Request(args.checkpoint, args.logits, args.val_logits, args.posthoc,
                      args.prior_shift, args.out, args.overrides,
                      _recipe(args.recipe, args.overrides))
    print("\n".join(longtail_eval(request)))


def _eval(args: argparse.Namespace) -> None:
    lt = args.logits or args.posthoc or args.prior_shift or args.val_logits
    if args.suite is not None and lt:
        raise UserError("--suite is a robustness evaluation: drop --logits / --posthoc / "
                        "--prior-shift / --val-logits")
    if args.suite is not None:
        return _robustness(args)
    given = [k for k, default in SUITE_OPTIONS.items() if getattr(args, k) != default
             and not (lt and k == "out")]  # the long-tail evaluation writes to --out too
    if given:
        raise UserError(f"{', '.join('--' + k.replace('_', '-') for k in given)} appl"
                        f"{'ies' if len(given) == 1 else 'y'} to a robustness suite only: add "
                        "--suite NAME or drop "
                        f"{'it' if len(given) == 1 else 'them'}")
    if lt:
        return _longtail(args)
    paths = args.checkpoint
    if not paths:
        raise UserError("give --checkpoint FILE (or --logits FILE.npy with --posthoc / "
                        "--prior-shift)")
    recipe = _recipe(args.recipe, args.overrides)
    if recipe is not None and recipe.task in AUTHORS_FILES:  # e.g. an mmseg file
        print(AUTHORS_FILES[recipe.task][0](paths, args.split, recipe, args.overrides))
        return
    if len(paths) == 1 and args.recipe is None and args.save_logits is None:
        print(C.evaluate_run_checkpoint(paths[0], args.split, args.overrides))  # a run's own file
        return
    split = args.split or "test"
    result = evaluate_files(paths, split, args.overrides, logits_npy=args.save_logits,
                            recipe=recipe)
    print(result_lines(split, result))


def _convert(args: argparse.Namespace) -> None:
    recipe = _recipe(args.recipe, args.overrides)
    write = (AUTHORS_FILES[recipe.task][1] if recipe is not None and recipe.task in AUTHORS_FILES
             else write_converted)
    print(write(args.file, args.out, overrides=args.overrides, recipe=recipe))
    print(f"wrote {args.out}")


def _export(args: argparse.Namespace) -> None:
    print(export_file(args.checkpoint, args.out, with_classifier=not args.no_classifier,
                      recipe=_recipe(args.recipe)))


def _predict(args: argparse.Namespace) -> None:
    # Imported here: predict pulls in PIL image reading, which training never needs.
    from gpaco.tasks.classification.predict import predict_files, top1_lines

    if Path(args.out).exists() and not args.overwrite:
        raise UserError(f"{args.out} exists; pass --overwrite to replace it, or --out FILE")
    count = predict_files(args.checkpoint, args.paths, args.out, k=args.topk,
                          device=args.device, recipe=_recipe(args.recipe),
                          on_bad_image=args.on_bad_image)
    for line in top1_lines(args.out):
        print(line)
    print(f"wrote top-{args.topk} predictions of {count} images to {args.out}")


def _recipes(_: argparse.Namespace) -> None:
    """One line per recipe: the paper's number it targets and where its values come from."""
    print(f"{'recipe':34s} {'paper number':32s} {'values':15s} description")
    for name in C.list_recipes():
        cfg = C.load_config(name)
        print(f"{name:34s} {cfg.origin.paper or '-':32s} {cfg.origin.values or '-':15s} "
              f"{cfg.description}")
    print("values: authors = their launcher's, extrapolated = no launcher (the closest one's "
          "values), reconstruction = their script cannot run; `gpaco config --recipe NAME` "
          "shows the source and the differences")


def _config(args: argparse.Namespace) -> None:
    cfg = C.load_config(args.recipe, args.config, args.overrides)
    print(C.dump(cfg), end="")
    print(parameter_line(cfg))


def _prepare(args: argparse.Namespace) -> None:
    convert, sources = PREPARERS[args.dataset]
    if len(args.sources) != len(sources):
        raise UserError(f"gpaco prepare {args.dataset} takes {' '.join(sources)}")
    print(f"{args.dataset}: {convert(*args.sources)}")


def _report(args: argparse.Namespace) -> None:
    print(write_report(Path(args.run_dir), tasks.pictures()), end="")


COMMANDS = {"train": _train, "eval": _eval, "convert": _convert, "export": _export,
            "predict": _predict, "config": _config, "recipes": _recipes, "report": _report,
            "prepare": _prepare}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse, letting key=value overrides stand anywhere, also after options."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or "=" not in e]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        if not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides) + extra
    return args


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a cluster sends on preemption), handled exactly like Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _is_rank_0() -> bool:
    # Under torchrun only rank 0 prints a user error; the others exit with the same status.
    return int(os.environ.get("RANK", "0")) == 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    try:
        return _main(argv)
    except BrokenPipeError:  # `gpaco recipes | head -1`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str]) -> int:
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        if not argv[0].startswith("-") and "=" not in argv[0]:  # `gpaco trian`: not an override
            print(f"gpaco: error: {unknown_command(argv[0], list(COMMANDS))}", file=sys.stderr)
            return 2
        argv = ["train", *argv]  # `gpaco lr=0.1` and `gpaco --recipe X` train, like bare `gpaco`
    args = _parse(argv)
    command = args.command or "train"
    if args.command is None:  # bare `gpaco` trains the default recipe
        args = _parse(["train"])
    try:
        COMMANDS[command](args)
    except UserError as err:
        if _is_rank_0():
            print(f"gpaco: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        kept = getattr(stop, "checkpoint", None)  # set by the trainer
        if _is_rank_0():
            print(f"gpaco: {what}; " + (f"{kept} is kept: continue with --resume "
                                        f"{Path(kept).parent}" if kept else
                                        "no checkpoint was written yet"), file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    return 0


def command() -> None:
    """The `gpaco` command (gpaco.__main__.entry): `main`, then the exit without the
    interpreter's teardown.

    Why: finalising a process that imported torch takes about 0.5 s, and 1 s once
    torch._dynamo is in (every torch optimiser imports it): 1.1-1.4 s after the default job's
    last line. By then gpaco has closed every file it writes; the atexit handlers still run
    (logging, multiprocessing's worker clean-up, temporary files) and both streams are
    flushed. A traceback, or a thread still running, takes the ordinary exit."""
    try:
        code = main()
    except SystemExit as stop:  # argparse: --help, --version, a usage error
        if not isinstance(stop.code, (int, type(None))):
            raise
        code = stop.code or 0
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that left, or a closed stream
            pass
    os._exit(code)


if __name__ == "__main__":
    command()
