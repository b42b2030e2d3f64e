"""The segmentation task (gpaco.train.task interface): the datasets of
gpaco.data.segmentation with mmseg's joint transforms, mmseg's decoders on smp encoders with the
GPaCo projection,
CE + aux CE (+ per-pixel GPaCo), whole / slide / multi-scale + flip evaluation, mIoU files."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from gpaco import distributed as gdist
from gpaco.config import Config
from gpaco.config.options import TaskEntry
from gpaco.data.registry import build_dataset, dataset_options
from gpaco.tasks.entries import task_entry
from gpaco.data.segmentation import SEGMENTATION_DATASETS, eval_transform, train_transform
from gpaco.data.segmentation.transforms import MEAN, STD
from gpaco.errors import UserError
from gpaco.losses.segmentation import SegmentationLossInputs
from gpaco.models.segmentation import create_segmenter
from gpaco.tasks.segmentation.inference import evaluate, predict
from gpaco.tasks.segmentation import options
from gpaco.tasks.segmentation.methods import (SEGMENTATION_METHODS, build_segmentation_criterion,
                                             get_segmentation_method)
from gpaco.tasks.segmentation.metrics import SegmentationScores, percent
from gpaco.tasks.segmentation.report import plot_iou_vs_frequency, plot_predictions, write_class_csv
from gpaco.tasks.segmentation.eval_batches import collate_by_size

from gpaco.train import parallel
from gpaco.train.data import Data, cpu_loader, resolve_device
from gpaco.train.input_check import check_model_takes_input
from gpaco.weights.checkpoint import check_classes, load_weights
from gpaco.weights.load import weights_file

if TYPE_CHECKING:
    from gpaco.train.trainer import Run

PER_CLASS_CSV = "per_class_iou.csv"
IOU_PNG = "iou_vs_frequency.png"
PREDICTIONS_PNG = "predictions.png"
PIXEL_COUNTS = "pixel_counts.json"  # the training split's labelled pixels per class (a cache)


class SegmentationForward(nn.Module):
    """`module(views, masks)` -> the criterion's inputs, so DDP and torch.compile see the pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor) -> SegmentationLossInputs:
        out = self.model.forward_train(views[0])
        return SegmentationLossInputs(out.logits, labels, out.aux_logits, out.embeddings)


def _normalisation(cfg: Config) -> dict[str, tuple[float, ...]]:
    d = cfg.data
    return {"mean": tuple(d.mean) if d.mean else MEAN, "std": tuple(d.std) if d.std else STD}


def _dataset(cfg: Config, train: bool, transform: Any) -> Dataset:
    d = cfg.data
    table = SEGMENTATION_DATASETS
    options = {k: getattr(d, k) for k in dataset_options(d.dataset, table) if hasattr(d, k)}
    return build_dataset(d.dataset, root=d.root, train=train, transform=transform, table=table,
                         **options)


def _test_transform(cfg: Config) -> Any:
    return eval_transform(tuple(cfg.data.scale), **_normalisation(cfg))


def build_segmenter(cfg: Config, num_classes: int) -> nn.Module:
    """The config's segmentation model for `num_classes` classes (norms as the run's)."""
    m = cfg.model
    if m.pretrained and not weights_file(m.pretrained):
        raise UserError(f"model.pretrained={m.pretrained}: a segmentation encoder loads a "
                        "local weight file (nothing is downloaded); give its path")
    contrastive = get_segmentation_method(cfg.method).contrastive
    model = create_segmenter(
        m.arch, m.backbone, num_classes, decoder_channels=m.decoder_channels,
        projection_dim=m.dim if contrastive else None, aux=cfg.loss.aux_weight > 0,
        aux_channels=m.aux_channels, encoder_output_stride=m.output_stride,
        encoder_checkpoint=m.pretrained or None, c1_channels=m.c1_channels,
        **(m.backbone_kwargs or {}))
    return parallel.convert_norms(model, None, m.sync_bn,
                                  parallel.local_batch(cfg.train.batch_size))


class SegmentationTask:
    """Semantic segmentation: mIoU / mAcc / aAcc and per-class IoU."""

    methods = SEGMENTATION_METHODS
    datasets = SEGMENTATION_DATASETS
    pictures = (PREDICTIONS_PNG, IOU_PNG)  # in the order `gpaco report` shows them

    def entry(self) -> TaskEntry:
        """The task as the config sees it (gpaco.config.options)."""
        return task_entry(options.OPTIONS, options.check, self.methods, self.datasets)

    def batch_mix(self, cfg: Config, data: Data) -> None:
        return None

    def checkpoint_extras(self, data: Data) -> dict[str, Any]:
        return {"classes": list(data.test.classes)}

    def build_data(self, cfg: Config, device: torch.device, *, with_train: bool = True,
                   augment_in_step: bool = False) -> Data:
        d, t = cfg.data, cfg.train
        train = None
        if with_train:
            tf = train_transform(tuple(d.scale), tuple(d.crop_size),
                                 ratio_range=tuple(d.ratio_range),
                                 cat_max_ratio=d.cat_max_ratio, **_normalisation(cfg))
            train = _dataset(cfg, True, tf)
        test = _dataset(cfg, False, _test_transform(cfg))
        pin = device.type == "cuda"
        train_loader = (cpu_loader(train, parallel.local_batch(t.batch_size), True, d.workers,
                                   pin, cfg.seed) if train is not None else None)
        test_loader = cpu_loader(test, t.eval_batch_size, False, d.workers, pin, cfg.seed,
                                 collate_fn=collate_by_size)
        return Data(train, test, None, train_loader, test_loader, None, test.num_classes, [],
                    test_name=_split_name(test))

    def check_input(self, cfg: Config, data: Data, model: nn.Module,
                    device: torch.device) -> None:
        check_model_takes_input(model, tuple(cfg.data.crop_size), device, cfg.model.backbone,
                                key="data.crop_size")

    def build_model(self, cfg: Config, data: Data) -> nn.Module:
        model = build_segmenter(cfg, data.num_classes)
        local = parallel.local_batch(cfg.train.batch_size)
        if local < 2 and any(isinstance(x, nn.modules.batchnorm._BatchNorm)
                             for x in model.modules()):
            raise UserError(f"train.batch_size={cfg.train.batch_size} gives {local} image per "
                            "process, but the model's batch norm needs at least 2 in training "
                            "(its image-pooling branch sees one value per channel); give "
                            "train.batch_size >= 2 per process")
        return model

    def model_for(self, cfg: Config, num_classes: int) -> nn.Module:
        """The run's model for `num_classes` classes, without its data (gpaco config)."""
        return build_segmenter(cfg, num_classes)

    def build_criterion(self, cfg: Config, data: Data) -> nn.Module:
        options = {f.name: getattr(cfg.loss, f.name)
                   for f in fields(get_segmentation_method(cfg.method).loss_options)}
        # One pixel-sampling stream per process, fixed by the run's seed.
        seed = cfg.seed + 65536 * gdist.rank()
        return build_segmentation_criterion(cfg.method, data.num_classes,
                                            aux_weight=cfg.loss.aux_weight,
                                            ce_average=cfg.loss.ce_average, seed=seed,
                                            lovasz_weight=cfg.loss.lovasz_weight, **options)

    def train_forward(self, model: nn.Module) -> nn.Module:
        return SegmentationForward(model)

    def start_lines(self, run: Run) -> list[str]:
        inf = run.cfg.inference
        return [f"evaluation on the {run.data.test_name} split ({len(run.data.test)} images; "
                f"numbers in %): {inf.mode}, scales {inf.ratios} x data.scale "
                f"{run.cfg.data.scale}{', flip' if inf.flip else ''}"]

    def evaluate(self, run: Run, loader: Any) -> SegmentationScores:
        return _evaluate(run.cfg, run.model, loader, run.data.num_classes, run.device)

    def evaluate_file(self, ckpt: dict[str, Any], cfg: Config, split: str | None,
                      path: str) -> SegmentationScores:
        """`gpaco eval` of a run's checkpoint `path` (loaded as `ckpt`) on `split`, the one
        labelled held-out split its dataset has (None: that split)."""
        device = resolve_device(cfg.train.device)
        data = self.build_data(cfg, device, with_train=False)
        if split not in (None, data.test_name):
            raise UserError(f"--split {split}: a segmentation run evaluates the one labelled "
                            f"held-out split of {cfg.data.dataset}, '{data.test_name}'; give "
                            f"--split {data.test_name} or leave --split out")
        check_classes(ckpt.get("num_classes"), ckpt.get("classes"), data.test, path)
        model = self.build_model(cfg, data).to(device)
        load_weights(model, ckpt)
        result = _evaluate(cfg, model, data.test_loader, data.num_classes, device)
        result.num_images = len(data.test)
        return result

    def file_line(self, split: str | None, result: SegmentationScores) -> str:
        """What `gpaco eval` prints of `evaluate_file`'s result (on `result.split`)."""
        return (self.describe(result.split, self.summary(result))
                + f" ({result.num_images} images)")

    def summary(self, result: SegmentationScores) -> dict[str, Any]:
        """Percentages (like classification's), per-class IoU in class order, and the split."""
        return {"miou": percent(result.miou), "macc": percent(result.macc),
                "aacc": percent(result.aacc), "iou": [percent(v) for v in result.iou],
                "split": result.split}

    def score(self, summary: dict[str, Any]) -> float:
        return summary["miou"]

    def describe(self, split: str, summary: dict[str, Any]) -> str:
        return (f"{split} mIoU {summary['miou']:.2f}% mAcc {summary['macc']:.2f}% "
                f"aAcc {summary['aacc']:.2f}%")

    def final_line(self, summary: dict[str, Any]) -> str:
        # summaries before issue 22 have no split: their runs called every evaluation "test"
        return "final (last epoch) " + self.describe(summary.get("split", "test"), summary)

    def write_outputs(self, run: Run, result: SegmentationScores) -> None:
        folder, classes = run.folder, list(run.data.test.classes)
        counts = _pixel_counts(run)
        write_class_csv(folder / PER_CLASS_CSV, result, classes, counts)
        if run.cfg.output.plots:
            plot_iou_vs_frequency(folder / IOU_PNG, result, classes, counts)
            _plot_predictions(run)


@torch.no_grad()
def _evaluate(cfg: Config, model: nn.Module, loader: Any, num_classes: int,
              device: torch.device) -> SegmentationScores:
    groups = (pair for group in loader for pair in group)  # one image size per group
    _, matrix = evaluate(model, groups, num_classes, device=device, **_predict_options(cfg))
    if gdist.world_size() > 1:  # each rank evaluated its shard
        matrix.matrix = matrix.matrix.to(device)
        parallel.sum_over_ranks(matrix.matrix)
    result = matrix.compute()
    result.split = _split_name(loader.dataset)
    return result


def _split_name(dataset: Dataset) -> str:
    """The name of the labelled split a segmentation dataset's `train=False` loads."""
    return getattr(dataset, "eval_split", "test")  # a user's dataset may not say


def _predict_options(cfg: Config) -> dict[str, Any]:
    inf = cfg.inference
    return {"mode": inf.mode, "crop": tuple(inf.crop) if inf.crop else None,
            "stride": tuple(inf.stride) if inf.stride else None, "ratios": tuple(inf.ratios),
            "flip": inf.flip, "scale": tuple(cfg.data.scale)}


def _pixel_counts(run: Run) -> list[int]:
    """The training split's labelled pixels per class, read once per run folder (every mask)."""
    path = run.folder / PIXEL_COUNTS
    if path.is_file():
        return json.loads(path.read_text())
    counts = run.data.train.pixel_counts() if run.data.train is not None else []
    path.write_text(json.dumps(counts))
    return counts


@torch.no_grad()
def _plot_predictions(run: Run) -> None:
    """The first `inference.predictions` images of the evaluated split beside their labels and
    predictions."""
    raw = _dataset(run.cfg, False, None)
    count = min(run.cfg.inference.predictions, len(raw))
    tf, model = _test_transform(run.cfg), run.model.eval()
    images, labels, preds = [], [], []
    for i in range(count):
        image, mask = raw[i]
        x, _ = tf(image, mask)
        scores = predict(model, x[None].to(run.device), mask.shape[-2:], **_predict_options(run.cfg))
        images.append(image.permute(1, 2, 0).numpy())
        labels.append(mask.numpy())
        preds.append(scores.argmax(1)[0].cpu().numpy())
    if count:  # lists: real images differ in size
        plot_predictions(run.folder / PREDICTIONS_PNG, images, labels, preds,
                         list(run.data.test.classes))
