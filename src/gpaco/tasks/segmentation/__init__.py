"""The segmentation task's evaluation: metrics, inference modes and reports."""

from gpaco.tasks.segmentation.inference import MULTI_SCALE_RATIOS, evaluate, predict, slide_inference, whole_inference
from gpaco.tasks.segmentation.metrics import ConfusionMatrix, SegmentationScores, confusion_matrix, scores

__all__ = [
    "MULTI_SCALE_RATIOS",
    "ConfusionMatrix",
    "SegmentationScores",
    "confusion_matrix",
    "evaluate",
    "predict",
    "scores",
    "slide_inference",
    "whole_inference",
]
