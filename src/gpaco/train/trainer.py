"""`train(cfg, run_dir)`: the whole run, from config to report files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gpaco import distributed as gdist
from gpaco.errors import UserError
from gpaco.models.summary import describe_parts
from gpaco.seeding import seed_all, seed_epoch

from gpaco.train import iterations, parallel
from gpaco.train import run_dir as rd
from gpaco.train.optimizer import optimizer_of
from gpaco.train.data import Data, resolve_device
from gpaco.weights.checkpoint import FORMAT_KEY, FORMAT_VERSION, atomic_save, load_checkpoint, load_weights
from gpaco.config import Config, dump, to_dict
from gpaco.train.cpu import apply_threads_and_workers, keep_freed_memory
from gpaco.train.loop import Progress, train_epoch
from gpaco.train.resume_policy import check_resume
from gpaco.train.schedule import ScheduledStep
from gpaco.train.step import augments_in_step, build_step
from gpaco.train.step_checkpoint import EpochPosition, StepCheckpoints, position_from, start_loader_at
from gpaco.train.task import Task
from gpaco.train.run_record import check_and_record, check_same_model


def say(msg: str) -> None:
    if gdist.is_main():
        print(msg, flush=True)


class Run:
    """The objects of one run, built by its task (train/task.py), and the state that a
    checkpoint carries."""

    def __init__(self, cfg: Config, folder: Path, task: Task):
        self.cfg, self.folder = cfg, folder
        self.task = task
        t = cfg.train
        self.device = resolve_device(t.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: autotune once
        else:
            keep_freed_memory()
        self.threads, workers, self.threads_reason = apply_threads_and_workers(
            t.threads, cfg.data.workers, on_gpu=self.device.type == "cuda",
            loader=not cfg.data.batched_augment)
        # Float sums differ with the thread count: config.yaml keeps the count `auto` chose,
        # for a resume or `--config RUN/config.yaml` to repeat the run exactly.
        t.threads = self.threads
        seed_all(cfg.seed)
        # The loaders get the number resolved here, not `auto` (config.yaml keeps `auto`).
        resolved = cfg.replace(data=cfg.data.replace(workers=workers))
        self.data: Data = self.task.build_data(resolved, self.device,
                                               augment_in_step=augments_in_step(t))
        if len(self.data.train_loader) == 0:
            raise UserError(f"the training set ({len(self.data.train)} images) is smaller than one "
                            f"batch (train.batch_size={t.batch_size})")
        if cfg.schedule.iterations is not None:  # the epochs an iteration run walks
            cfg.schedule.epochs = iterations.epochs_for(cfg.schedule, self.epoch_steps())
        _check_step_checkpoints(t.checkpoint_every_steps, self.epoch_steps())
        self.model = self.task.build_model(cfg, self.data).to(self.device)
        check_input = getattr(self.task, "check_input", None)
        if check_input is not None:  # before any step: one line, not a traceback inside it
            check_input(cfg, self.data, self.model, self.device)
        if t.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.criterion = self.task.build_criterion(cfg, self.data).to(self.device)
        self.optimizer = optimizer_of(cfg, self.model)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=t.amp == "fp16")
        self.train_module: nn.Module = self.task.train_forward(self.model)
        self.train_module = parallel.wrap_for_training(self.train_module, self.device)  # DDP
        if t.compile:
            self.train_module = torch.compile(self.train_module)
        mix = self.task.batch_mix(cfg, self.data)
        self.step = ScheduledStep(build_step(t, self.train_module, self.criterion,
                                             self.optimizer, self.scaler, self.device,
                                             self.data.augment, mix),
                                  self.optimizer, cfg.optim.lr,
                                  iterations.lr_schedule(cfg.schedule, self.epoch_steps()))
        self.start_epoch = 0
        self.resume_at: EpochPosition | None = None  # set by a mid-epoch checkpoint
        self.best: dict[str, Any] | None = None
        self.previous: Path | None = None  # the run --overwrite set aside, until a checkpoint

    def epoch_steps(self) -> int:
        """Optimiser steps in one epoch: the loader's batches, capped by max_steps_per_epoch."""
        steps, cap = len(self.data.train_loader), self.cfg.train.max_steps_per_epoch
        return steps if cap is None else min(steps, cap)

    def state(self, epoch: int) -> dict[str, Any]:
        """What a checkpoint holds after `epoch` complete epochs."""
        state = {FORMAT_KEY: FORMAT_VERSION, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "epoch": epoch, "config": to_dict(self.cfg),
                 "best": self.best, "num_classes": self.data.num_classes,
                 "class_counts": self.data.class_counts, **self.task.checkpoint_extras(self.data)}
        criterion = self.criterion.state_dict()
        if criterion:  # e.g. the per-pixel GPaCo's sampling stream
            state["criterion"] = criterion
        return state

    def load(self, ckpt: dict[str, Any]) -> None:
        if "optimizer" not in ckpt or "scaler" not in ckpt:
            # A converted or exported file holds weights only: it starts a run, not resumes one.
            raise UserError("this checkpoint has no optimiser state (a `gpaco convert` output?) "
                            "and cannot be resumed; start a new run from it with "
                            "model.pretrained=<file>")
        load_weights(self.model, ckpt)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except ValueError as err:
            raise UserError(f"the checkpoint's optimiser state does not fit this model ({err})")
        self.scaler.load_state_dict(ckpt["scaler"])
        if "criterion" in ckpt:
            self.criterion.load_state_dict(ckpt["criterion"])
        self.start_epoch = ckpt["epoch"]
        self.resume_at = position_from(ckpt, self.device)
        self.best = ckpt.get("best")

    def save_last(self, epoch: int, position: dict[str, Any] | None = None) -> None:
        """Write last.pt after `epoch` complete epochs (+ `position` inside the next one);
        from then on the run --overwrite replaced is no longer needed."""
        if not gdist.is_main():
            return
        state = self.state(epoch)
        if position is not None:
            state["position"] = position
        atomic_save(state, self.folder / rd.CHECKPOINT)
        if self.previous is not None:
            rd.discard(self.previous)
            self.previous = None


def _check_step_checkpoints(every: int | None, steps: int) -> None:
    """A step interval no epoch reaches would write nothing: refuse it rather than ignore it."""
    if every is not None and every >= steps:
        raise UserError(f"train.checkpoint_every_steps={every} but an epoch has {steps} steps: "
                        "no checkpoint inside an epoch would be written (last.pt is written "
                        "after every epoch anyway); give fewer steps or leave it unset")


def _step_cap(run: Run, epoch: int) -> int | None:
    """max_steps_per_epoch, and the end of an iteration run inside its last epoch."""
    cap = run.cfg.train.max_steps_per_epoch
    if run.cfg.schedule.iterations is None:
        return cap
    return iterations.steps_in_epoch(run.cfg.schedule, epoch, run.epoch_steps())


def _due(epoch: int, every: int, cfg: Config) -> bool:
    return epoch + 1 == cfg.schedule.epochs or (epoch + 1) % every == 0


def _run_epoch(run: Run, epoch: int) -> dict[str, Any]:
    cfg = run.cfg
    seed_epoch(cfg.seed, epoch, gdist.rank())
    loader = run.data.train_loader
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)
    resume_at, run.resume_at = run.resume_at, None
    if resume_at is not None:
        start_loader_at(loader, resume_at)
    t = cfg.train
    lr = run.step.begin_epoch(epoch, run.epoch_steps())  # the lr is set before every optimiser step
    if resume_at is not None:
        run.step.skip(resume_at.steps)
    epochs = cfg.schedule.epochs
    progress = Progress(cfg.output.progress, len(loader), f"epoch {epoch + 1}/{epochs}",
                        enabled=gdist.is_main())
    every = t.checkpoint_every_steps
    after_step = (StepCheckpoints(every, loader, lambda pos: run.save_last(epoch, pos))
                  if every else None)
    stats = train_epoch(run.step, run.model, loader, run.device,
                        channels_last=t.channels_last and not run.step.lays_out_inputs,
                        max_steps=_step_cap(run, epoch), log_every=t.log_every,
                        progress=progress, epoch=epoch + 1, resume_at=resume_at,
                        after_step=after_step)
    stats = parallel.end_epoch(run.model, stats)  # DDP: average BN stats, global loss
    # Epochs are counted from 1 everywhere a user reads them (console, metrics, summary, plots).
    return {"epoch": epoch + 1, "lr": lr, "train_loss": stats.loss, "steps": stats.steps,
            "epoch_seconds": stats.seconds, "images_per_second": stats.images / stats.seconds}


def _evaluate_epoch(run: Run, epoch: int, record: dict[str, Any]) -> Any:
    """Validation every `train.val_every` epochs (it selects the best epoch); the test set every
    `train.eval_every` epochs and at each new best, whose test numbers the summary reports.
    Returns the test result, or None when the test set was not evaluated."""
    t, task, lines, start = run.cfg.train, run.task, [], time.perf_counter()
    improved = False
    if run.data.val_loader is not None and _due(epoch, t.val_every, run.cfg):
        record["val"] = task.summary(task.evaluate(run, run.data.val_loader))
        lines.append(task.describe("val", record["val"]))
        improved = run.best is None or task.score(record["val"]) > task.score(run.best["val"])
    test, name = None, run.data.test_name
    if improved or _due(epoch, t.eval_every, run.cfg):
        test = task.evaluate(run, run.data.test_loader)
        record[name] = task.summary(test)
        lines.append(task.describe(name, record[name]))
    if improved:
        run.best = {"epoch": epoch + 1, "val": record["val"], "test": record[name]}
        if gdist.is_main():
            atomic_save(run.state(epoch + 1), run.folder / rd.BEST_CHECKPOINT)
    if lines:
        record["eval_seconds"] = time.perf_counter() - start
        say("  " + " || ".join(lines))
    return test


@parallel.rank_failures_as_errors
def train(cfg: Config, folder: Path, task: Task, resume: bool = False,
          overwrite: bool = False) -> dict[str, Any]:
    """Train (or continue) the run in `folder` with its `task`'s parts; returns the summary
    written to summary.json.

    Everything is built (and so checked) before the run folder is created or replaced.
    """
    run = Run(cfg, folder, task)
    problem = None
    if gdist.is_main():
        try:
            run.previous = rd.prepare(folder, resume=resume, overwrite=overwrite)
        except UserError as err:
            problem = str(err)
    problem = gdist.broadcast_from_main(problem)  # every rank stops, none waits on a barrier
    if problem:
        raise UserError(problem)
    try:
        return _train_in(run, folder, resume)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):  # what the CLI says is kept
            written = folder / rd.CHECKPOINT
            err.checkpoint = str(written) if written.is_file() and run.previous is None else None
        previous = run.previous
        if previous is not None and previous.exists():  # no checkpoint yet: keep the old run
            rd.restore(folder, previous)
            say(f"the new run stopped before its first checkpoint; the previous run is back in "
                f"{folder}")
        if isinstance(err, OSError):  # writing the run folder (metrics, plots, summary) failed
            raise UserError(f"cannot write the run directory {folder}: {err.strerror or err}"
                            f"{f' ({err.filename})' if err.filename else ''}; the last "
                            "checkpoint is kept") from None
        raise


def _train_in(run: Run, folder: Path, resume: bool) -> dict[str, Any]:
    cfg = run.cfg
    if resume:
        ckpt = load_checkpoint(folder / rd.CHECKPOINT, map_location=run.device)
        check_resume(ckpt.get("config"), cfg, str(folder / rd.CHECKPOINT),
                     ckpt.get("epoch", 0))
        check_same_model(ckpt["config"], cfg, str(folder / rd.CHECKPOINT))
        run.load(ckpt)
        changed = check_and_record(ckpt["config"], cfg, folder, str(folder / rd.CHECKPOINT),
                                   run.start_epoch, write=gdist.is_main())
        if gdist.is_main():
            rd.truncate_metrics(folder, run.start_epoch)
        inside = f" step {run.resume_at.steps + 1}" if run.resume_at is not None else ""
        say(f"resuming {folder} at epoch {run.start_epoch + 1}{inside}")
        if changed:
            say(changed)
    if gdist.is_main():  # on resume too: overrides given then (data.root=, epochs=) are kept
        rd.write_text_atomic(folder / rd.CONFIG, dump(cfg))
        if not resume:
            (folder / "environment.json").write_text(json.dumps(rd.environment(), indent=2))
    log = rd.MetricsLog(folder, cfg.output.tensorboard) if gdist.is_main() else None
    epochs = cfg.schedule.epochs
    say(f"training {cfg.method} on {cfg.data.dataset} ({len(run.data.train)} images, "
        f"{run.data.num_classes} classes) for {epochs} epochs{_iterations(cfg)} on {run.device} "
        f"({run.threads} CPU thread{'s' if run.threads > 1 else ''}: {run.threads_reason}; "
        f"kept in config.yaml)")
    say(describe_parts(run.model))
    for line in run.task.start_lines(run):
        say(line)
    test: Any = None
    start = time.perf_counter()
    try:
        for epoch in range(run.start_epoch, epochs):
            record = _run_epoch(run, epoch)
            say(f"epoch {epoch + 1}/{epochs} loss {record['train_loss']:.4f} lr {record['lr']:.4g} "
                f"{record['epoch_seconds']:.1f}s")
            evaluated = _evaluate_epoch(run, epoch, record)
            test = evaluated if evaluated is not None else test
            if gdist.is_main():
                log.write(record, epoch + 1)
            run.save_last(epoch + 1)
    finally:
        if log is not None:
            log.close()
    if test is None:  # resumed a finished run: evaluate the final weights again
        test = run.task.evaluate(run, run.data.test_loader)
    summary = _summary(run, test, time.perf_counter() - start)
    if gdist.is_main():
        _write_outputs(run, test, summary)
    return summary


def _iterations(cfg: Config) -> str:
    n = cfg.schedule.iterations
    return f" ({n:,} iterations)" if n is not None else ""


def _summary(run: Run, test: Any, seconds: float) -> dict[str, Any]:
    cfg = run.cfg
    return {"name": cfg.name, "task": cfg.task, "method": cfg.method,
            "dataset": cfg.data.dataset, "epochs": cfg.schedule.epochs,
            "split": run.data.test_name, "last": run.task.summary(test),
            "best_on_val": run.best, "train_seconds": seconds,
            "num_train_images": len(run.data.train), "device": str(run.device)}


def _write_outputs(run: Run, test: Any, summary: dict[str, Any]) -> None:
    (run.folder / rd.SUMMARY).write_text(json.dumps(summary, indent=2))
    run.task.write_outputs(run, test)
