"""Robustness benchmarks: ImageNet-C (mCE), ImageNet-R (200-class mask), ImageNet-Sketch."""

from gpaco.robustness.corruptions import (
    ALEXNET_ERRORS, CATEGORY, CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES,
)
from gpaco.robustness.evaluate import SUITES, evaluate_suite
from gpaco.robustness.mce import corruption_errors, mce_alexnet, mce_unnormalized
from gpaco.robustness.preprocess import PROTOCOLS, robustness_transform
from gpaco.robustness.result import PartResult, SuiteResult, write_results
from gpaco.robustness.wnids import imagenet_r_indices, imagenet_r_wnids, imagenet_wnids

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
