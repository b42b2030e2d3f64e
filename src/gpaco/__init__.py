"""gpaco: Parametric Contrastive Learning (PaCo) and Generalized PaCo (GPaCo) for PyTorch."""

__version__ = "0.1.0"
