"""`gpaco eval --posthoc / --prior-shift / --logits`: calibration, post-hoc corrections fitted on
validation and the shifted-prior suite (gpaco.evaluation), from checkpoints or from saved
logits, written to one output folder that holds nothing else (files of a run are never
touched)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from gpaco.errors import UserError
from gpaco.tasks.classification.evaluate_files import evaluate_files
from gpaco.tasks.classification.metrics import evaluate_logits, shot_groups

from gpaco.evaluation.calibration import calibration
from gpaco.evaluation.plots import (PRIOR_SHIFT_PNG, RELIABILITY_PNG, write_reliability,
                                    write_shift_plot)
from gpaco.evaluation.posthoc import PosthocFit, check_fit_split, fit_posthoc
from gpaco.evaluation.prior_shift import evaluate_shift_suite
from gpaco.evaluation.report import (calibration_line, calibration_table, posthoc_table,
                                     shift_table)
from gpaco.evaluation.saved import SavedLogits, read_saved

MANIFEST = "evaluation.json"


@dataclass
class Request:
    checkpoints: list[str] = field(default_factory=list)
    logits: list[str] = field(default_factory=list)
    val_logits: str | None = None
    posthoc: bool = False
    prior_shift: bool = False
    out: Path | None = None
    overrides: list[str] = field(default_factory=list)
    recipe: Any = None  # a Config for authors' files


def default_out(req: Request) -> Path:
    first = Path(req.checkpoints[0] if req.checkpoints else req.logits[0])
    suffix = f"-ensemble{len(req.checkpoints)}" if len(req.checkpoints) > 1 else ""
    return first.parent / (f"eval-{first.stem}{suffix}" if req.checkpoints
                           else f"{first.stem}-eval")


def _planned(req: Request, models: int) -> list[str]:
    files = [MANIFEST, "calibration.json", "calibration.md"]
    files += [RELIABILITY_PNG] if models == 1 else [f"reliability-{i}.png" for i in range(models)]
    if req.checkpoints:
        for split in ("test", "val") if req.posthoc else ("test",):
            files += [f"{split}_logits.npy", f"{split}_logits.labels.npy",
                      f"{split}_logits.meta.json"]
    if req.posthoc:
        files += ["posthoc.json", "posthoc.md"]
    if req.prior_shift:
        files += ["prior_shift.json", "prior_shift.md", PRIOR_SHIFT_PNG]
    return files


def prepare_out(folder: Path, planned: list[str]) -> None:
    """Create `folder`, refusing one that holds a file an earlier evaluation did not write."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not an output folder; choose another --out")
    ours: set[str] = set()
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            ours = set(json.loads(manifest.read_text())["files"])
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{manifest} is not an evaluation manifest; choose another --out") \
                from None
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in ours) \
        if folder.is_dir() else []
    if foreign:
        raise UserError(f"{folder} holds files gpaco eval did not write ({', '.join(foreign[:3])})"
                        "; choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"files": sorted(ours | set(planned))}, indent=1))


def _from_checkpoints(req: Request, split: str, folder: Path) -> SavedLogits:
    path = folder / f"{split}_logits.npy"
    evaluate_files(req.checkpoints, split, req.overrides, logits_npy=path, recipe=req.recipe)
    return read_saved(path)


def _name(saved: SavedLogits, taken: set[str]) -> str:
    base = f"{saved.method or 'model'} ({Path(saved.source.split(', ')[0]).name})"
    name, k = base, 2
    while name in taken:
        name, k = f"{base} #{k}", k + 1
    taken.add(name)
    return name


def variant_metrics(logits: torch.Tensor, labels: torch.Tensor,
                    counts: list[int] | None) -> dict[str, Any]:
    """Top-1, groups, the most frequent training class's accuracy and calibration."""
    result = evaluate_logits(logits, labels, counts)
    groups = shot_groups(counts) if counts else None
    head = max(range(len(counts)), key=lambda c: counts[c]) if counts else None
    return {**{k: v for k, v in result.summary().items()},
            "head_class": result.per_class[head] if head is not None else None,
            "calibration": calibration(logits, labels, groups).summary()}


def source_prior(saved: SavedLogits) -> torch.Tensor:
    """The prior the model's softmax is a posterior for: uniform where the loss added the log
    prior in training (Balanced Softmax, logit-adjusted loss, PaCo / GPaCo with their prior),
    else (plain CE) the training frequencies."""
    c = saved.logits.shape[1]
    if saved.prior_in_loss is False and saved.class_counts:
        return torch.tensor(saved.class_counts, dtype=torch.float64)
    return torch.ones(c, dtype=torch.float64)


def _write(folder: Path, name: str, data: Any) -> None:
    (folder / name).write_text(data if isinstance(data, str) else json.dumps(data, indent=1))


def run(req: Request) -> list[str]:
    """Evaluate, write the output folder; returns the lines to print."""
    if bool(req.checkpoints) == bool(req.logits):
        raise UserError("give --checkpoint FILE(s) or --logits FILE.npy (saved by "
                        "--save-logits), not both")
    if req.posthoc and req.logits and (req.val_logits is None or len(req.logits) > 1):
        raise UserError("--posthoc with --logits needs one --logits file and --val-logits "
                        "(validation logits saved by gpaco eval --split val --save-logits)")
    if req.val_logits is not None and not req.posthoc:
        raise UserError("--val-logits is only read by --posthoc")
    # read (and check) the saved files before anything is written
    tests = [read_saved(p) for p in req.logits]
    val = read_saved(req.val_logits) if req.val_logits is not None else None
    for t in tests:
        if t.split != "test":
            raise UserError(f"{t.source} holds {t.split} logits; --logits takes test logits")
    if val is not None:
        check_fit_split(val.split)
    folder = req.out or default_out(req)
    prepare_out(folder, _planned(req, len(tests) or 1))
    if req.checkpoints:
        tests = [_from_checkpoints(req, "test", folder)]
        if req.posthoc:
            val = _from_checkpoints(req, "val", folder)
    lines: list[str] = []
    taken: set[str] = set()
    names = [_name(t, taken) for t in tests]
    cal_json, cal_md = {}, []
    for i, (name, t) in enumerate(zip(names, tests)):
        metrics = variant_metrics(t.logits, t.labels, t.class_counts)
        cal = calibration(t.logits, t.labels, shot_groups(t.class_counts) if t.class_counts
                          else None)
        png = RELIABILITY_PNG if len(tests) == 1 else f"reliability-{i}.png"
        write_reliability(folder / png, cal, title=name)
        cal_json[name] = metrics
        cal_md += [f"## {name}", "", *calibration_table(metrics["calibration"]), "",
                   f"![reliability]({png})", ""]
        lines += [f"{name}: test top1 {metrics['top1']:.2f} ({len(t.labels)} images)",
                  calibration_line(metrics["calibration"])]
    _write(folder, "calibration.json", cal_json)
    _write(folder, "calibration.md", "\n".join(["# Calibration on test", "", *cal_md]))
    models = {n: t.logits for n, t in zip(names, tests)}
    adjustable = {n: (t.logits, source_prior(t)) for n, t in zip(names, tests)}
    if req.posthoc:
        assert val is not None
        fit = fit_posthoc(val.logits, val.labels, val.class_counts, val.split,
                          val.center_log_weights)
        table = _posthoc(folder, fit, tests[0])
        lines += ["", f"post-hoc corrections fitted on {val.split} ({fit.val_samples} images): "
                      f"temperature {fit.temperature:.3f}; tau {fit.tau:+.2f} (then temperature "
                      f"{fit.tau_temperature:.3f}); bias-corrected: temperature "
                      f"{fit.bias_temperature:.3f} and one bias per class", *table]
        adjusted = f"{names[0]} + logit adjustment (tau {fit.tau:+.2f}, val)"
        models[adjusted] = fit.apply(tests[0].logits, "logit_adjustment")
        # prior adjustment from the bias-corrected temperature's posteriors (calibrated for
        # the validation prior); the logit-adjusted model is compared by its plain top-1
        adjustable[names[0]] = (fit.calibrated_for_val_prior(tests[0].logits),
                                torch.tensor(fit.val_prior, dtype=torch.float64))
    if req.prior_shift:
        counts = tests[0].class_counts
        if counts is None:
            raise UserError("the shifted-prior suite orders classes by their training counts, "
                            "which these logits do not record (an authors' file)")
        rows = evaluate_shift_suite(models, tests[0].labels, counts, adjustable)
        _write(folder, "prior_shift.json", [asdict(r) for r in rows])
        _write(folder, "prior_shift.md", "\n".join(["# Top-1 under shifted test priors", "",
                                                    *shift_table(rows), "",
                                                    f"![prior shift]({PRIOR_SHIFT_PNG})", ""]))
        write_shift_plot(folder / PRIOR_SHIFT_PNG, rows)
        lines += ["", *shift_table(rows)]
    lines.append(f"wrote {folder}")
    return lines


def _posthoc(folder: Path, fit: PosthocFit, test: SavedLogits) -> list[str]:
    """Before / after metrics of each correction on test; posthoc.json and posthoc.md."""
    counts = test.class_counts
    if counts is not None and max(abs(n / sum(counts) - p)
                                  for n, p in zip(counts, fit.train_prior)) > 1e-9:
        raise UserError("the validation and test logits come from models with different "
                        "training priors")
    variants = {v: variant_metrics(fit.apply(test.logits, v).float(), test.labels,
                                   test.class_counts) for v in fit.variants()}
    head = "head class"
    if test.classes and test.class_counts:
        head = test.classes[max(range(len(test.class_counts)),
                                key=lambda c: test.class_counts[c])]
    table = posthoc_table(variants, head)
    _write(folder, "posthoc.json", {"fit": fit.to_json(), "test": variants,
                                    "test_source": test.source})
    _write(folder, "posthoc.md", "\n".join([
        "# Post-hoc corrections (fitted on validation, measured on test)", "",
        f"temperature {fit.temperature:.4f}; logit adjustment tau {fit.tau:+.2f}, then "
        f"temperature {fit.tau_temperature:.4f}; bias-corrected temperature "
        f"{fit.bias_temperature:.4f} with biases {[round(b, 3) for b in fit.bias or []]}; "
        f"fitted on {fit.fitted_on} ({fit.val_samples} images)", "", *table, ""]))
    return table
