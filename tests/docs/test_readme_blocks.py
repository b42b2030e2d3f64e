"""Every code block of README.md and docs/*.md runs as written, or is checked as far as this
machine allows, with the reason in the tables below; a block or command line the tables do not
know fails the test, so a new one cannot slip in unchecked.

Commands run in one folder shared by the module (a user's working folder, `World`), in which
every file they name exists in its real format. Absolute data paths (`/data/...`,
`/shared/...`) and the placeholder `data.root=...` point into that folder."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from _blocks import DOCUMENTS, ROOT, Block, all_blocks, command_lines
from _world import ONE_STEP, SEG_SHRINK, World
from gpaco.cli import _parse, main
from gpaco.train import cpu

REAL_BUSY_CPUS = cpu.machine_busy_cpus  # imported before the suite's conftest replaces it

CLS_SHRINK = ONE_STEP  # one step, no plots
# ImageNet-LT recipes on the generated 1000-class folder: 64 px, a batch of 4, one step.
IMAGENET_SHRINK = [*ONE_STEP, "schedule.warmup_epochs=0", "train.batch_size=4",
                   "data.image_size=64", "model.ghost_bn=2", "train.eval_batch_size=8"]


@dataclass(frozen=True)
class Check:
    """How one command line is checked. how: run (as written), shrunk (as written + `extra`
    overrides), config (`gpaco config` of the same arguments: they resolve), parse (the CLI
    accepts the arguments), torchrun (torch's launcher accepts its part, `gpaco config` the
    rest), pip / pytest (pyproject.toml provides what they install / collect), help (the
    script has every option given), grep (a pipe into grep finds lines)."""
    how: str
    why: str = ""
    needs: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    slow: bool = False


NO_GPU = "needs a CUDA GPU (CUDA graph, bf16); here: the arguments resolve to a valid config"
MULTI = ("starts several processes / machines; the launcher's arguments are parsed and the "
         "gpaco arguments resolved (tests/distributed runs torchrun itself on gloo)")
COMMANDS: dict[str, Check] = {
    # README quick start
    "pip install -e .": Check("pip", "installs the package: pyproject names it gpaco with the "
                              "`gpaco` script; installing again inside a test is not useful"),
    "gpaco": Check("shrunk", "the full default run takes 25-100 s here: one step an epoch, "
                   "one thread (the thread choice's words are not compared)",
                   extra=("train.max_steps_per_epoch=1", "train.threads=1")),
    "pip install -e .[dev]": Check("pip", "the dev extra exists and brings pytest"),
    "python -m pytest": Check("pytest", "the suite itself: its configuration is checked"),
    # README: the authors' checkpoints, export, predict, ensembles
    "gpaco eval --checkpoint paco_r50.pth.tar --recipe imagenet-lt-paco-r50 "
    "data.root=/data/imagenet": Check("shrunk", "1000-class ImageNet-LT folder generated; 64 px",
                                      ("imagenet-lt", "paco_r50.pth.tar"),
                                      ("data.image_size=64", "train.eval_batch_size=8"), True),
    "gpaco convert paco_r50.pth.tar --recipe imagenet-lt-paco-r50 --out paco_r50.pt":
        Check("run", needs=("paco_r50.pth.tar",), slow=True),
    "gpaco train --recipe imagenet-lt-paco-r50 model.pretrained=paco_r50.pt":
        Check("shrunk", "400 epochs of ImageNet-LT: one step at 64 px on the generated folder",
              ("imagenet-lt", "paco_r50.pth.tar"), (*IMAGENET_SHRINK, "output.dir=runs/ft"), True),
    "gpaco export runs/x/last.pt --out backbone.pth": Check("run", needs=("tiny run",)),
    "gpaco predict --checkpoint runs/x/last.pt photos/ --out preds.csv --topk 5":
        Check("run", needs=("tiny run", "photos")),
    "gpaco eval --checkpoint a.pt --checkpoint b.pt --save-logits test_logits.npy":
        Check("run", needs=("tiny run",)),
    # README / docs/segmentation.md
    "gpaco train --recipe seg-default": Check("shrunk", "minutes on the CPU: two steps",
                                              extra=SEG_SHRINK),
    "gpaco train --recipe seg-default-ce": Check("shrunk", "minutes on the CPU: two steps",
                                                 extra=(*SEG_SHRINK, "output.dir=runs/seg-ce")),
    "gpaco recipes | grep seg-": Check("grep"),
    "gpaco prepare pascal_context59 VOCdevkit/VOC2010 trainval":
        Check("run", needs=("pascal-context sources",)),
    "gpaco train --recipe cifar100-lt-paco data.root=./data data.batched_augment=true "
    "train.cuda_graph=true train.amp=bf16 train.channels_last=true": Check("config", NO_GPU),
    "torchrun --nproc_per_node=4 -m gpaco train --recipe imagenet-lt-paco-r50 data.root=...":
        Check("torchrun", MULTI),
    "torchrun --nnodes=2 --nproc_per_node=4 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 "
    "--rdzv-id=run1 -m gpaco train --recipe imagenet-lt-paco-r50 data.root=...":
        Check("torchrun", MULTI),
    "python benchmarks/data_speed.py --images 1000 --workers 1 2 --rounds 12 --cifar --out "
    "benchmarks/results-data-speed-cpu.json":
        Check("help", "a benchmark of minutes that rewrites a committed result file"),
    # docs/distributed.md
    "torchrun --nproc_per_node=4 -m gpaco train --recipe cifar100-lt-paco output.dir=runs/paco4":
        Check("torchrun", MULTI),
    "torchrun --nnodes=2 --nproc_per_node=4 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 "
    "--rdzv-id=paco-run-1 -m gpaco train --recipe cifar100-lt-paco "
    "output.dir=/shared/runs/paco8": Check("torchrun", MULTI),
    "torchrun --nproc_per_node=4 -m gpaco train --resume /shared/runs/paco8":
        Check("torchrun", MULTI + "; --resume of a run folder that only the line above makes"),
    "gpaco train --recipe imagenet-lt-paco-r50": Check(
        "shrunk", "ImageNet-LT: one step at 64 px on the generated folder", ("imagenet-lt",),
        (*IMAGENET_SHRINK, "output.dir=runs/ghost"), True),
    "torchrun --nproc_per_node=4 -m gpaco train --recipe imagenet-lt-paco-r50":
        Check("torchrun", MULTI),
    "gpaco train --recipe imagenet-lt-paco-r50 model.ghost_bn=null": Check(
        "config", "the same one-step run as the line above with plain batch norm adds nothing; "
        "the arguments resolve"),
    # docs/evaluation.md: on the quick start's run (one step an epoch) and two saved logit sets
    "gpaco eval --checkpoint runs/default/last.pt --posthoc": Check(
        "run", needs=("default run",), slow=True),
    "gpaco eval --checkpoint runs/default/last.pt --prior-shift": Check(
        "run", needs=("default run",), slow=True),
    "gpaco eval --logits a/test_logits.npy --logits b/test_logits.npy --prior-shift": Check(
        "run", needs=("saved logits",), slow=True),
    "gpaco eval --logits runs/default/eval-last/test_logits.npy --val-logits "
    "runs/default/eval-last/val_logits.npy --posthoc --prior-shift --out recomputed/": Check(
        "run", "the files the --posthoc line wrote", ("posthoc logits",), slow=True),
    # docs/robustness.md, docs/vit-finetune.md
    **{f"gpaco eval --checkpoint runs/vit_b/last.pt --suite {suite} --data-root {root}": Check(
        "parse", "ImageNet-C / -R / -Sketch folders of a 1000-class model: tests/robustness runs "
        "the suites through the CLI on generated folders of these layouts")
       for suite, root in (("imagenet-c", "/data/ImageNet-C"), ("imagenet-r", "/data/imagenet-r"),
                           ("imagenet-sketch", "/data/sketch"), ("all", "/data"))},
    "gpaco eval --checkpoint runs/imagenet-gpaco-vit-b/last.pt --suite all --data-root "
    "/data/robustness": Check("parse", "as the robustness.md lines"),
    "torchrun --nproc_per_node=8 -m gpaco train --recipe imagenet-gpaco-vit-b "
    "data.root=/data/imagenet model.pretrained=/weights/mae_pretrain_vit_base.pth":
        Check("torchrun", MULTI + "; the MAE file is checked when the run starts"),
    # docs/segmentation.md
    "gpaco train --recipe seg-ade20k-upernet-swin-t-gpaco data.root=/data/ade "
    "model.pretrained=swin_t.pth": Check("config", "ADE20K and a Swin-T file (160k iterations "
                                          "of a GPU run); the arguments resolve"),
    "gpaco eval --checkpoint runs/seg-default/last.pt": Check("run", needs=("seg run",)),
    "torchrun --nproc_per_node=8 -m gpaco train --recipe seg-cityscapes-deeplabv3plus-r50-gpaco":
        Check("torchrun", MULTI),
}

# Blocks that are not commands or Python: what each is checked against.
TEXT_BLOCKS = {
    "README.md: training paco on embedded (2478 images, 10 classes) for 6 epochs on cpu (2 CPU "
    "threads: train.threads=auto: 2 of 2 usable cores free now; kept in config.yaml)":
        "output of `gpaco`: every line but `...` has the printed line's words",
    "README.md: @inproceedings{cui2021paco, title={Parametric Contrastive Learning}, "
    "author={Cui, Jiequan and": "BibTeX: two entries with balanced braces",
    "segmentation.md: src/gpaco/": "a file tree: every path it names exists",
}

# Python blocks and the files they read. README's run one after the other in one namespace.
PYTHON_BLOCKS: dict[str, tuple[str, ...]] = {
    "README.md: import gpaco": ("export", "shoe.png", "default run"),
    "README.md: import torch": ("cifar100",),
    "README.md: from gpaco.models import GPaCoModel": (),
    "README.md: from gpaco.evaluation.calibration import calibration": (),
}
DOCS_PYTHON_BLOCKS: dict[str, tuple[str, ...]] = {  # each in its own namespace; all slow
    "checkpoints.md: from gpaco.models import Classifier, create_backbone": (
        "gpaco_r50_imagenetlt.pth.tar", "x101.pth.tar", "x50.pth.tar", "imagenet-lt", "photos"),
}
DOCS_PYTHON_IMPORTS_ONLY = {  # only compiled and its imports run, with the reason
    "robustness.md: import gpaco": "a full ImageNet-C folder is 75 corruption-severity folders of 1000 "
                     "classes; tests/robustness runs evaluate_suite on generated folders",
}

BLOCKS = all_blocks()


def _commands() -> list[tuple[Block, str]]:
    return [(b, c) for b in BLOCKS if b.lang != "python" and b.key not in TEXT_BLOCKS
            for c in command_lines(b.text)]


def test_every_block_and_command_is_in_a_table() -> None:
    unknown = [b.name + " " + b.key for b in BLOCKS if b.lang == "python"
               and b.key not in {**PYTHON_BLOCKS, **DOCS_PYTHON_BLOCKS,
                                 **DOCS_PYTHON_IMPORTS_ONLY}]
    unknown += [f"{b.name} command {c!r}" for b, c in _commands() if c not in COMMANDS]
    assert not unknown, "blocks this test does not handle (add them to its tables):\n" + \
        "\n".join(unknown)
    seen = {c for _, c in _commands()}
    assert not set(COMMANDS) - seen, f"table rows no document has: {set(COMMANDS) - seen}"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("user"))


@pytest.fixture
def in_world(world: World, monkeypatch) -> World:
    monkeypatch.chdir(world.root)
    torch.manual_seed(0)
    return world


def _localised(command: str, world: World) -> list[str]:
    """The command's tokens with absolute data paths and `...` inside the world folder."""
    text = re.sub(r"(?<![\w.])/(data|shared|weights)\b", str(world.root) + r"/\1", command)
    text = text.replace("data.root=...", f"data.root={world.root / 'data/imagenet'}")
    return shlex.split(text)


def _gpaco_argv(tokens: list[str]) -> list[str]:
    """The gpaco arguments of a `gpaco ...`, `python -m gpaco ...` or torchrun line."""
    at = tokens.index("gpaco") if "gpaco" in tokens else None
    assert at is not None, tokens
    return tokens[at + 1:]


def _check_pip(tokens: list[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert tokens[:3] == ["pip", "install", "-e"] and project["name"] == "gpaco"
    assert project["scripts"]["gpaco"] == "gpaco.__main__:entry"
    target = tokens[3]
    if "[" in target:
        extra = target[target.index("[") + 1:-1]
        assert any(r.startswith("pytest") for r in project["optional-dependencies"][extra])


def _check_torchrun(tokens: list[str], world: World) -> None:
    from torch.distributed.run import get_args_parser

    at = tokens.index("-m")
    launcher = get_args_parser().parse_args([*tokens[1:at], "-m", "gpaco"])
    assert launcher.module and launcher.training_script == "gpaco"
    argv = _gpaco_argv(tokens)
    if "--resume" in argv:
        assert _parse(argv).resume
    else:
        assert main(["config", *argv[1:]]) == 0, argv


def _run(command: str, check: Check, world: World, capsys) -> str:
    tokens = _localised(command, world)
    how = check.how
    if how == "pip":
        _check_pip(tokens)
    elif how == "pytest":
        options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
        assert [ROOT / p for p in options["ini_options"]["testpaths"]] == [ROOT / "tests"]
    elif how == "torchrun":
        _check_torchrun(tokens, world)
    elif how == "parse":
        assert _parse(_gpaco_argv(tokens)).checkpoint
    elif how == "config":
        assert tokens[:2] == ["gpaco", "train"] and main(["config", *tokens[2:]]) == 0
    elif how == "help":
        script = ROOT / tokens[1]
        out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                             text=True, check=True).stdout
        assert all(t in out for t in tokens[2:] if t.startswith("--")), out
    elif how == "grep":
        pipe = tokens.index("|")
        assert main(_gpaco_argv(tokens[:pipe])) == 0
        pattern = tokens[pipe + 2]
        assert [line for line in capsys.readouterr().out.splitlines() if pattern in line]
    else:
        extra = list(check.extra) if how == "shrunk" else []
        assert main([*_gpaco_argv(tokens), *extra]) == 0, command
    return capsys.readouterr().out


def _command_params() -> list:
    params, seen = [], set()
    for block, command in _commands():
        check = COMMANDS.get(command)
        if check is None or command in seen:
            continue
        seen.add(command)
        marks = [pytest.mark.slow] if check.slow else []
        params.append(pytest.param(command, check, id=f"{block.name} {command[:60]}",
                                   marks=marks))
    return params


@pytest.mark.parametrize("command, check", _command_params())
def test_command(command: str, check: Check, in_world: World, capsys) -> None:
    in_world.need(*check.needs)
    out = _run(command, check, in_world, capsys)
    if command == "gpaco":
        _compare_with_the_output_block(out)


def _words(line: str) -> str:
    """A printed line without its numbers and the reason for its thread count."""
    return re.sub(r"\d+(\.\d+)?", "N", re.sub(r"\(\d+ CPU threads?[^)]*\)", "(threads)",
                                                line.strip()))


def _compare_with_the_output_block(out: str) -> None:
    block = next(b for b in BLOCKS if b.key in TEXT_BLOCKS and "training paco" in b.key)
    printed = {_words(line) for line in out.splitlines()}
    shown = [line for line in block.text.splitlines() if line.strip() != "..."]
    missing = [line for line in shown if _words(line) not in printed]
    assert not missing, f"README's output block shows lines `gpaco` does not print: {missing}"


def test_commands_outside_code_blocks() -> None:
    """Commands shown as indented text escape the tables above: they must be fenced."""
    fenced = {(b.path, n) for b in BLOCKS
              for n in range(b.line, b.line + b.text.count("\n") + 2)}
    loose = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in DOCUMENTS
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if (path, n) not in fenced and re.match(r"^ {4,}(gpaco|torchrun|python|pip) ", line)]
    assert not loose, "put these commands in a fenced code block:\n" + "\n".join(loose)


@pytest.mark.slow  # the whole default run: 25 s on 2 idle cores, up to 100 s beside other jobs
def test_the_quick_start_as_written(tmp_path, monkeypatch, capsys) -> None:
    # As a user runs it: `auto` threads see the machine's real load (the suite's conftest
    # shows every test an idle machine, and 2 threads beside other jobs took 465 s here).
    monkeypatch.setattr(cpu, "machine_busy_cpus", REAL_BUSY_CPUS)
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    _compare_with_the_output_block(capsys.readouterr().out)
    assert (tmp_path / "runs/default/last.pt").is_file()


def test_citation_block_is_two_bibtex_entries() -> None:
    block = next(b for b in BLOCKS if b.key.startswith("README.md: @inproceedings"))
    depth = 0
    for ch in block.text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0 and re.findall(r"@(\w+)\{", block.text) == ["inproceedings", "article"]


def test_segmentation_file_tree_names_existing_files() -> None:
    block = next(b for b in BLOCKS if b.key == "segmentation.md: src/gpaco/")
    paths = []
    for line in block.text.splitlines()[1:]:
        first = line.split()[0] if line.strip() else ""
        if "/" in first or first.endswith(".py"):
            base = ROOT if first.startswith("benchmarks/") else ROOT / "src/gpaco"
            paths.append(base / first)
    missing = [str(p.relative_to(ROOT)) for p in paths if not any(p.parent.glob(p.name))]
    assert paths and not missing, f"docs/segmentation.md names files that do not exist: {missing}"


@pytest.mark.slow  # two epochs of ResNet-32 on CIFAR-100-LT's 2,150 images: ~40 s on 1 thread
@pytest.mark.filterwarnings("ignore:CIFAR100LT. md5")  # the generated CIFAR-100 files
def test_readme_python_blocks(in_world: World) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads beside other jobs run 2-7x slower (README, CPU threads)
    try:
        _run_readme_python(in_world)
    finally:
        torch.set_num_threads(threads)


def _run_readme_python(in_world: World) -> None:
    namespace: dict = {"__name__": "__readme__"}
    for block in [b for b in BLOCKS if b.path.name == "README.md" and b.lang == "python"]:
        in_world.need(*PYTHON_BLOCKS[block.key])
        exec(compile(block.text, block.name, "exec"), namespace)  # noqa: S102
    assert namespace["corrected"].shape == namespace["test_logits"].shape


def _docs_python(keys: dict) -> list:
    return [pytest.param(b, id=b.name) for b in BLOCKS if b.lang == "python" and b.key in keys]


@pytest.mark.slow  # the authors' ResNet-50 / ResNeXt-50 / ResNeXt-101 files at 224 px
@pytest.mark.parametrize("block", _docs_python(DOCS_PYTHON_BLOCKS))
def test_docs_python_block(block: Block, in_world: World) -> None:
    in_world.need(*DOCS_PYTHON_BLOCKS[block.key])
    source = re.sub(r"(?<![\w.])/(data)\b", str(in_world.root) + r"/\1", block.text)
    namespace: dict = {"__name__": "__docs__"}
    exec(compile(source, block.name, "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("block", _docs_python(DOCS_PYTHON_IMPORTS_ONLY))
def test_docs_python_block_imports(block: Block) -> None:
    tree = ast.parse(block.text, block.name)
    imports = ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], [])
    assert imports.body
    exec(compile(imports, block.name, "exec"), {})  # noqa: S102
