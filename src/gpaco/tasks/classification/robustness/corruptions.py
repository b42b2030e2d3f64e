"""ImageNet-C's corruptions, their category folders and AlexNet's errors.

AlexNet's top-1 error per corruption, averaged over the 5 severities (fractions), as listed in
google-research/augmix `imagenet.py` (`ALEXNET_ERR`, commit 9b9824c), which credits
hendrycks/robustness; they normalise Hendrycks & Dietterich's (ICLR 2019) corruption error. The
hendrycks/robustness repository (commit 8190fe3) itself prints unnormalised errors and ships no
such list.
"""

from __future__ import annotations

# The 15 corruptions of the mCE, in the benchmark's order.
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
# Released with ImageNet-C for validation; never part of the mCE.
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# The category folders of the layout `<root>/<category>/<corruption>/<severity>/<wnid>/`.
CATEGORY: dict[str, str] = {
    **dict.fromkeys(("gaussian_noise", "shot_noise", "impulse_noise"), "noise"),
    **dict.fromkeys(("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"), "blur"),
    **dict.fromkeys(("snow", "frost", "fog", "brightness"), "weather"),
    **dict.fromkeys(("contrast", "elastic_transform", "pixelate", "jpeg_compression"), "digital"),
    **dict.fromkeys(EXTRA_CORRUPTIONS, "extra"),
}

ALEXNET_ERRORS: dict[str, float] = dict(zip(CORRUPTIONS, (
    0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360,
    0.866816, 0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840,
    0.606500,
)))
