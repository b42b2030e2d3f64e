"""Robustness benchmarks: ImageNet-C (mCE), ImageNet-R (200-class mask), ImageNet-Sketch."""

from gpaco.tasks.classification.robustness.corruptions import (
    ALEXNET_ERRORS, CATEGORY, CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES,
)
from gpaco.tasks.classification.robustness.evaluate import SUITES, evaluate_suite
from gpaco.tasks.classification.robustness.mce import corruption_errors, mce_alexnet, mce_unnormalized
from gpaco.tasks.classification.robustness.preprocess import PROTOCOLS, robustness_transform
from gpaco.tasks.classification.robustness.result import PartResult, SuiteResult, write_results
from gpaco.tasks.classification.robustness.wnids import imagenet_r_indices, imagenet_r_wnids, imagenet_wnids

__all__ = [
    "ALEXNET_ERRORS",
    "CATEGORY",
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "PROTOCOLS",
    "SEVERITIES",
    "SUITES",
    "PartResult",
    "SuiteResult",
    "corruption_errors",
    "evaluate_suite",
    "imagenet_r_indices",
    "imagenet_r_wnids",
    "imagenet_wnids",
    "mce_alexnet",
    "mce_unnormalized",
    "robustness_transform",
    "write_results",
]
