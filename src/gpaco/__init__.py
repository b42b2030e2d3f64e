"""gpaco: Parametric Contrastive Learning (PaCo) and Generalized PaCo (GPaCo) for PyTorch."""

from gpaco.version import __version__  # noqa: F401


def load_model(checkpoint: str, overrides: tuple[str, ...] = ()):
    """A trained model in eval mode, with `.transform` (its test pipeline) and `.classes`:

        m = gpaco.load_model("runs/default/last.pt")
        logits = m.model(m.transform(PIL.Image.open("shoe.png").convert("RGB")).unsqueeze(0))
        print(m.classes[int(logits.argmax())])

    Takes gpaco checkpoints and (with overrides naming the architecture) the authors' files.
    """
    from gpaco.tasks.classification.restore import load_model as load  # keeps `import gpaco` light

    return load(checkpoint, overrides)



def load_exported(path: str, backbone: str | None = None, *, num_classes: int | None = None,
                  **backbone_kwargs):
    """The plain network (backbone + classifier under the torchvision / timm name) of a
    `gpaco export` file, in eval mode; `model(x)` gives the trained model's logits:

        net = gpaco.load_exported("resnet8.pth")             # the file records its backbone
        net = gpaco.load_exported("plain.pth", "resnet50", num_classes=1000)   # any other

    See `gpaco.weights.export.load_exported`.
    """
    from gpaco.weights.export import load_exported as load

    return load(path, backbone, num_classes=num_classes, **backbone_kwargs)
