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

