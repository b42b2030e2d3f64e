"""`evaluate_suite` on generated folders of the exact layouts, with a colour-reading model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from gpaco.errors import UserError
from gpaco.tasks.classification.robustness import (
    CATEGORY, CORRUPTIONS, SEVERITIES, evaluate_suite, imagenet_r_indices, imagenet_r_wnids,
    imagenet_wnids, robustness_transform, write_results,
)

from gpaco.tasks.classification.robustness.layout import imagenet_c_folders, scan_class_folders
from _robustness_fakes import SIDE, ColourModel, write_class_folders, write_jpeg

SMALL = dict(image_size=SIDE, resize_size=SIDE, progress=False, batch_size=7)
WNIDS = list(imagenet_wnids())


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _category_layout(root: Path, classes: list[int]) -> dict[tuple[str, int], float]:
    """All 75 folders under category folders, `classes` only, 4 images per class.

    Folder j (in order) gets j % 5 wrong images out of 4 * len(classes): its known error.
    """
    known = {}
    for j, (c, s) in enumerate((c, s) for c in CORRUPTIONS for s in SEVERITIES):
        folder = root / CATEGORY[c] / c / str(s)
        wrong = j % 5
        for n, k in enumerate(classes * 4):
            shown = (k + 1) if n < wrong else k
            write_jpeg(folder / WNIDS[k] / f"{n}.JPEG", shown)
        known[(c, s)] = wrong / (4 * len(classes))
    return known


def test_imagenet_c_partial_category_layout_matches_known_errors(tmp_path: Path, capsys) -> None:
    known = _category_layout(tmp_path / "c", classes=[0, 5, 999])
    result = evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", partial=True,
                            **{**SMALL, "progress": True})
    bar = capsys.readouterr().err
    assert "ImageNet-C" in bar and "75/75" in bar  # the tqdm bar runs over the 75 folders
    got = {tuple(p.name.split("/")): p.top1_error for p in result.parts}
    assert len(result.parts) == 75
    for (c, s), err in known.items():
        assert got[(c, str(s))] == pytest.approx(err), (c, s)
    # Hand check of the summary from the known table: folder j has j % 5 of 12 wrong, so every
    # corruption (5 consecutive folders) averages (0+1+2+3+4)/5/12 = 1/6.
    assert result.summary["mce_unnormalized"] == pytest.approx(100 / 6)
    assert result.summary["corruption_errors"]["fog"] == pytest.approx(1 / 6)
    assert not result.complete
    assert "gaussian_noise/1: 997 class folder(s)" in result.not_evaluated
    assert result.parts[0].images == 12 and len(result.parts[0].missing_classes) == 997


def test_imagenet_c_strict_names_the_missing_part(tmp_path: Path) -> None:
    _category_layout(tmp_path / "c", classes=[3])
    with pytest.raises(UserError, match="class folder n01440764"):
        evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", **SMALL)
    (tmp_path / "c" / "blur" / "glass_blur" / "4").rename(tmp_path / "moved")
    with pytest.raises(UserError, match=r"missing glass_blur/4;"):
        evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", **SMALL)
    result = evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", partial=True, **SMALL)
    assert "glass_blur/4" in result.not_evaluated and len(result.parts) == 74


def test_imagenet_c_subsets_need_partial_and_are_reported(tmp_path: Path) -> None:
    _category_layout(tmp_path / "c", classes=[3])
    with pytest.raises(UserError, match="needs all 15"):
        evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", corruptions=["fog"], **SMALL)
    result = evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", corruptions=["fog"],
                            severities=[1, 2], partial=True, **SMALL)
    assert [p.name for p in result.parts] == ["fog/1", "fog/2"]
    assert "snow (not requested)" in result.not_evaluated
    assert "fog/3 (not requested)" in result.not_evaluated
    with pytest.raises(UserError, match="unknown ImageNet-C corruption 'fogg'"):
        evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", corruptions=["fogg"],
                       partial=True, **SMALL)


def test_extra_corruptions_are_evaluated_but_not_in_the_mce(tmp_path: Path) -> None:
    root = tmp_path / "c"
    for s in SEVERITIES:
        write_jpeg(root / "extra" / "spatter" / str(s) / WNIDS[2] / "a.JPEG", 7)  # all wrong
        write_jpeg(root / "fog" / str(s) / WNIDS[2] / "a.JPEG", 2)  # flat layout, all right
    result = evaluate_suite(ColourModel(), "imagenet-c", root, corruptions=["fog", "spatter"],
                            partial=True, **SMALL)
    assert result.summary["corruption_errors"] == {"fog": 0.0, "spatter": 1.0}
    assert result.summary["mce_unnormalized"] == 0.0 and result.summary["mce_alexnet"] == 0.0
    assert "(extra)" in result.to_markdown()


def test_a_corruption_in_both_layouts_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "c" / "fog" / "1").mkdir(parents=True)
    (tmp_path / "c" / "weather" / "fog" / "1").mkdir(parents=True)
    with pytest.raises(UserError, match="fog is both in"):
        evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", partial=True, **SMALL)


def test_complete_flat_layout_passes_the_strict_checks(tmp_path: Path) -> None:
    """All 75 flat folders with all 1000 classes (one shared folder, linked 75 times).

    Only the layout checks run here: evaluating its 75,000 images takes ~50 s on this CPU;
    the evaluation itself is tested on the partial layouts above.
    """
    shared = tmp_path / "shared"
    write_class_folders(shared, WNIDS, range(1000))
    for c in CORRUPTIONS:
        (tmp_path / "c" / c).mkdir(parents=True)
        for s in SEVERITIES:
            (tmp_path / "c" / c / str(s)).symlink_to(shared, target_is_directory=True)
    folders, missing = imagenet_c_folders(tmp_path / "c", CORRUPTIONS, SEVERITIES)
    assert missing == [] and len(folders) == 75
    assert folders[("zoom_blur", 3)] == tmp_path / "c" / "zoom_blur" / "3"
    label_of = {w: i for i, w in enumerate(WNIDS)}
    for folder in list(folders.values())[:3]:
        found = scan_class_folders(folder, WNIDS, label_of)
        assert found.missing == [] and len(found.samples) == 1000
        assert found.samples[999][1] == 999


def test_imagenet_r_masks_the_logits_to_its_200_classes(tmp_path: Path) -> None:
    r_labels = list(imagenet_r_indices())
    write_class_folders(tmp_path / "r", list(imagenet_r_wnids()), r_labels, wrong={r_labels[7]})
    # Column 0 (tench) is not an ImageNet-R class and always has the largest logit: only the
    # mask makes the model right.
    assert 0 not in r_labels
    result = evaluate_suite(ColourModel(decoy=0), "imagenet-r", tmp_path / "r", **SMALL)
    assert result.complete and result.parts[0].images == 200
    # The one wrong image shows class r_labels[7] + 1, which is not an R class either: the
    # nearest R colour wins instead, still a mistake.
    assert result.summary["top1_error"] == pytest.approx(1 / 200)


def test_imagenet_r_refuses_a_non_r_class_folder(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "r", [WNIDS[0]], [0])
    with pytest.raises(UserError, match="not classes of this dataset"):
        evaluate_suite(ColourModel(), "imagenet-r", tmp_path / "r", **SMALL)


def test_imagenet_r_missing_class_and_partial(tmp_path: Path) -> None:
    r_wnids, r_labels = list(imagenet_r_wnids()), list(imagenet_r_indices())
    write_class_folders(tmp_path / "r", r_wnids[1:], r_labels[1:])
    with pytest.raises(UserError, match=f"class folder {r_wnids[0]}"):
        evaluate_suite(ColourModel(), "imagenet-r", tmp_path / "r", **SMALL)
    result = evaluate_suite(ColourModel(), "imagenet-r", tmp_path / "r", partial=True, **SMALL)
    assert not result.complete and result.not_evaluated == [f"class folder {r_wnids[0]}"]
    assert result.summary["top1_error"] == 0.0 and result.parts[0].images == 199


def test_imagenet_sketch_all_1000_classes_and_results_files(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "sketch", WNIDS, range(1000), wrong={10, 20, 30})
    (tmp_path / "sketch" / WNIDS[5] / "notes.txt").write_text("not an image")
    result = evaluate_suite(ColourModel(), "imagenet-sketch", tmp_path / "sketch",
                            **{**SMALL, "batch_size": 250})
    assert result.complete and result.parts[0].images == 1000
    assert result.summary["top1_error"] == pytest.approx(0.003)
    json_path, md_path = write_results(result, tmp_path / "out")
    saved = json.loads(json_path.read_text())
    assert saved["suite"] == "imagenet-sketch" and saved["images"] == 1000
    assert saved["parts"][0]["top1_error"] == pytest.approx(0.003)
    assert "| 1000 | 99.70 | 0.30 |" in md_path.read_text()


def test_c_results_files(tmp_path: Path) -> None:
    _category_layout(tmp_path / "c", classes=[1])
    result = evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "c", partial=True, **SMALL)
    json_path, md_path = write_results(result, tmp_path / "out")
    saved = json.loads(json_path.read_text())
    assert len(saved["parts"]) == 75 and saved["complete"] is False
    assert saved["summary"]["mce_alexnet"] == pytest.approx(result.summary["mce_alexnet"])
    md = md_path.read_text()
    assert "PARTIAL" in md and md.count("\n| ") >= 16  # header + 15 corruption rows
    assert "the paper's \"rel. mCE\"" in md


def test_model_output_must_be_1000_logits(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "s", WNIDS[:1], [0])
    with pytest.raises(UserError, match=r"1000 ImageNet logits, got output shape \(1, 10\)"):
        evaluate_suite(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(10)),
                       "imagenet-sketch", tmp_path / "s", partial=True, **SMALL)


def test_unknown_suite_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown robustness suite"):
        evaluate_suite(ColourModel(), "imagenet-a", tmp_path, **SMALL)
    with pytest.raises(UserError, match="is not a directory"):
        evaluate_suite(ColourModel(), "imagenet-c", tmp_path / "nope", **SMALL)


def test_model_mode_is_restored(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "s", WNIDS[:1], [0])
    model = ColourModel().train()
    evaluate_suite(model, "imagenet-sketch", tmp_path / "s", partial=True, **SMALL)
    assert model.training


def test_protocols_default_and_hendrycks() -> None:
    authors = robustness_transform("imagenet-c")
    names = [type(t).__name__ for t in authors.transforms]
    assert names == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    assert authors.transforms[0].size == 256 and authors.transforms[1].size == (224, 224)
    assert authors.transforms[0].interpolation.value == "bicubic"
    hendrycks = robustness_transform("imagenet-c", "hendrycks")
    assert [type(t).__name__ for t in hendrycks.transforms] == ["CenterCrop", "ToTensor", "Normalize"]
    r = robustness_transform("imagenet-r", "hendrycks", interpolation="bilinear")
    assert r.transforms[0].size == 256 and r.transforms[0].interpolation.value == "bilinear"
    img = Image.new("RGB", (224, 224))  # an ImageNet-C image: resized up to 256, cropped back
    assert authors(img).shape == hendrycks(img).shape == (3, 224, 224)
    with pytest.raises(UserError):
        robustness_transform("imagenet-c", "augmix")
