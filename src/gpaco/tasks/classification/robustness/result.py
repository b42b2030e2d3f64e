"""Results of `evaluate_suite`: per-folder counts, summary numbers, JSON and a markdown table."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpaco.errors import UserError
from gpaco.tasks.classification.robustness.corruptions import ALEXNET_ERRORS, SEVERITIES
from gpaco.weights.checkpoint import atomic_write


@dataclass
class PartResult:
    """One evaluated folder: "gaussian_noise/3" for ImageNet-C, the suite name otherwise."""

    name: str
    images: int
    correct: int
    missing_classes: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # files left out (on_bad_image=skip)

    @property
    def top1_error(self) -> float:
        return 1.0 - self.correct / self.images if self.images else float("nan")


@dataclass
class SuiteResult:
    """A suite's outcome.

    Attributes:
        suite, protocol: what ran; transform: its repr.
        complete: every folder and class of the benchmark was evaluated.
        parts: per-folder results.
        not_evaluated: what was missing or not requested (empty when complete).
        summary: "top1_error"/"top1_accuracy" (R, Sketch, val) or "corruption_errors",
            "mce_unnormalized" (paper's mCE, %), "mce_alexnet" (Hendrycks' mCE = paper's
            rel. mCE, %) for ImageNet-C. Errors are fractions, the two mCEs percentages.
    """

    suite: str
    protocol: str
    transform: str
    complete: bool
    parts: list[PartResult]
    not_evaluated: list[str]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for part, raw in zip(self.parts, out["parts"]):
            raw["top1_error"] = part.top1_error
        out["images"] = sum(p.images for p in self.parts)
        return out

    def to_markdown(self) -> str:
        head = f"**{self.suite}** (protocol {self.protocol}"
        left = len(self.not_evaluated)
        head += ")" if self.complete else f"; PARTIAL, not evaluated: {left} item(s))"
        if self.suite != "imagenet-c":
            p = self.parts[0]
            return "\n".join([head, "", "| images | top-1 acc (%) | top-1 error (%) |",
                              "|---:|---:|---:|",
                              f"| {p.images} | {100 * (1 - p.top1_error):.2f} | "
                              f"{100 * p.top1_error:.2f} |"])
        return "\n".join([head, ""] + _corruption_table(self))


def _corruption_table(result: SuiteResult) -> list[str]:
    errors = {p.name: p.top1_error for p in result.parts}
    rows = ["| corruption | " + " | ".join(f"s{s}" for s in SEVERITIES)
            + " | mean error (%) | CE / AlexNet (%) |",
            "|---|" + "---:|" * (len(SEVERITIES) + 2)]
    for corruption, mean in result.summary["corruption_errors"].items():
        cells = [f"{100 * errors[f'{corruption}/{s}']:.2f}" if f"{corruption}/{s}" in errors
                 else "-" for s in SEVERITIES]
        alexnet = ALEXNET_ERRORS.get(corruption)
        ce = f"{100 * mean / alexnet:.2f}" if alexnet else "(extra)"
        rows.append(f"| {corruption} | " + " | ".join(cells) + f" | {100 * mean:.2f} | {ce} |")
    if "mce_unnormalized" in result.summary:
        summary = result.summary
        rows += ["", f"mCE, unnormalised (the paper's \"mCE\"): {summary['mce_unnormalized']:.2f}",
                 f"mCE, AlexNet-normalised (Hendrycks' mCE, the paper's \"rel. mCE\"): "
                 f"{summary['mce_alexnet']:.2f}"]
    return rows


def result_files(out_dir: str | Path, suite: str) -> tuple[Path, Path]:
    """Where `write_results` puts a suite's JSON and markdown."""
    out = Path(out_dir)
    return out / f"{suite}.json", out / f"{suite}.md"


def check_results_folder(out_dir: str | Path, suites: Sequence[str], overwrite: bool) -> None:
    """Before an evaluation: the results folder can be written, and holds no earlier results
    of these suites unless `overwrite` (an evaluation never replaces results silently)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise UserError(f"cannot write the results folder {out}: {err.strerror or err}; give "
                        "another with --out DIR") from None
    existing = [str(p) for suite in suites for p in result_files(out, suite) if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{', '.join(existing)} exist(s) from an earlier evaluation; pass "
                        "--overwrite to replace them, or --out DIR for another folder")


def write_results(result: SuiteResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `<suite>.json` and `<suite>.md` into `out_dir` (each atomically); returns both."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    json_path, md_path = result_files(out_dir, result.suite)
    for path, text in ((json_path, json.dumps(result.to_dict(), indent=2) + "\n"),
                       (md_path, result.to_markdown() + "\n")):
        atomic_write(path, lambda f, text=text: f.write(text.encode()))
    return json_path, md_path
