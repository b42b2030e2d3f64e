"""Post-hoc corrections of a trained classifier's logits, fitted on a validation split only.

- Temperature scaling (Guo et al. 2017): logits / T, one scalar T minimising the validation NLL.
- Logit adjustment (Menon et al. 2021): z - tau * log(prior_train), tau chosen on validation by
  top-1 accuracy (ties: the smallest |tau|) over a grid that includes negative values, which give
  the head classes back what a method such as PaCo took from them (docs/evaluation.md).
- Both: the adjustment, then a temperature fitted on the adjusted validation logits.
- Bias-corrected temperature scaling (BCTS, Alexandari et al. 2020): z / T + b with a bias per
  class, all fitted by validation NLL (C + 1 numbers, where the others fit one or two). Its
  posteriors are calibrated for the validation prior: test-time prior adjustment (known or
  EM-estimated target prior) starts from them, and the "bias_corrected" variant divides the
  validation prior out (z / T + b - log prior_val), i.e. targets a balanced test set.
- PaCo / GPaCo only, nothing fitted: z - log w, undoing the center share w_y at the loss optimum
  that the run's alpha, beta and contrast size imply (docs/rebalancing.md): the correction the
  known training prior predicts.

The fitted values are plain numbers (`PosthocFit`), stored as JSON beside a checkpoint's
evaluation outputs, never in the weights. Applying them never needs the model: saved logits do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from gpaco.errors import UserError

from .priors import as_prior, log_prior

# tau grid: -2 .. 2 in steps of 0.05 (tau = 1 is the Bayes-optimal correction of a plain
# softmax for a balanced test set; tau = 0 leaves a Balanced-Softmax-trained model as it is)
TAU_GRID = tuple(round(-2 + 0.05 * i, 2) for i in range(81))
VARIANTS = ("none", "temperature", "logit_adjustment", "both", "bias_corrected", "center_share")


@dataclass
class PosthocFit:
    """Fitted values; `variant` logits = (z - tau * log prior) / temperature, or for
    "bias_corrected" z / bias_temperature + bias - log val_prior."""

    temperature: float  # temperature scaling alone
    tau: float  # logit adjustment alone
    tau_temperature: float  # the temperature fitted after the adjustment ("both")
    train_prior: list[float]
    fitted_on: str
    val_samples: int
    bias_temperature: float = 1.0  # bias-corrected temperature scaling: z / T + b
    bias: list[float] | None = None
    val_prior: list[float] | None = None  # the prior its posteriors are calibrated for
    center_log_weights: list[float] | None = None  # PaCo / GPaCo: log w_y, known, not fitted

    def variants(self) -> list[str]:
        """The variants this fit can apply (center_share only for PaCo / GPaCo)."""
        return [v for v in VARIANTS if v != "center_share" or self.center_log_weights]

    def calibrated_for_val_prior(self, logits: torch.Tensor) -> torch.Tensor:
        """z / T + b: logits whose softmax is calibrated for `val_prior`."""
        if self.bias is None:
            raise UserError("this fit has no bias-corrected temperature")
        return logits.double() / self.bias_temperature + torch.tensor(self.bias,
                                                                      dtype=torch.float64)

    def to_json(self) -> dict:
        return asdict(self)

    def apply(self, logits: torch.Tensor, variant: str) -> torch.Tensor:
        """The logits after correction `variant` (one of VARIANTS)."""
        if variant not in VARIANTS:
            raise UserError(f"post-hoc variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        z = logits.double()
        adjust = log_prior(torch.tensor(self.train_prior, dtype=torch.float64))
        if variant in ("logit_adjustment", "both"):
            z = z - self.tau * adjust
        if variant == "temperature":
            z = z / self.temperature
        elif variant == "both":
            z = z / self.tau_temperature
        elif variant == "center_share":
            if self.center_log_weights is None:
                raise UserError("the center-share correction needs a PaCo / GPaCo model")
            z = z - torch.tensor(self.center_log_weights, dtype=torch.float64)
        elif variant == "bias_corrected":
            z = self.calibrated_for_val_prior(logits) - log_prior(
                torch.tensor(self.val_prior, dtype=torch.float64))
        return z


def check_fit_split(split: str) -> None:
    """Post-hoc values are fitted on validation data only: refuse the test split."""
    if split == "test":
        raise UserError("post-hoc corrections are fitted on a validation split, never on the "
                        "test split (that would select on the test set); give validation logits")


def _nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(logits, labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T in [0.01, 100] minimising NLL(logits / T); NLL is convex in 1/T, so the bounded
    scalar search over log T finds the global minimum."""
    from scipy.optimize import minimize_scalar  # here: scipy costs 0.4 s of every command's start

    z = logits.double()
    res = minimize_scalar(lambda u: _nll(z / math.exp(u), labels), bounds=(math.log(0.01),
                          math.log(100.0)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


def fit_bias_corrected(logits: torch.Tensor, labels: torch.Tensor,
                       steps: int = 200) -> tuple[float, list[float]]:
    """T and per-class b minimising NLL(z / T + b) (L-BFGS in float64 from T = 1, b = 0)."""
    z = logits.double()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t, bias], lr=1, max_iter=steps, tolerance_grad=1e-10,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp() + bias, labels)
        loss.backward()
        return loss

    opt.step(closure)
    b = bias.detach()
    return float(log_t.detach().exp()), (b - b.mean()).tolist()


def fit_tau(logits: torch.Tensor, labels: torch.Tensor, train_prior: torch.Tensor,
            grid: tuple[float, ...] = TAU_GRID) -> float:
    """The tau of `grid` with the best top-1 of z - tau * log prior (ties: smallest |tau|)."""
    z, adjust = logits.double(), log_prior(train_prior)
    scores = [(float(((z - t * adjust).argmax(1) == labels).double().mean()), -abs(t), t)
              for t in grid]
    return max(scores)[2]


def fit_posthoc(logits: torch.Tensor, labels: torch.Tensor, train_counts: list[int] | None,
                split: str, center_log_weights: list[float] | None = None) -> PosthocFit:
    """Fit temperature, tau, the temperature after tau and the bias-corrected temperature on
    validation logits of `split`; `center_log_weights` (PaCo / GPaCo's log w) is carried."""
    check_fit_split(split)
    if train_counts is None:
        raise UserError("logit adjustment needs the training class counts, which these logits "
                        "do not record (an authors' file): evaluate a gpaco checkpoint")
    if len(labels) == 0:
        raise UserError("no validation samples to fit on")
    prior = as_prior(train_counts, logits.shape[1], "the training prior")
    if center_log_weights is not None and len(center_log_weights) != logits.shape[1]:
        raise UserError(f"{len(center_log_weights)} center shares for {logits.shape[1]} classes")
    labels = labels.long()
    tau = fit_tau(logits, labels, prior)
    adjusted = logits.double() - tau * log_prior(prior)
    bias_temperature, bias = fit_bias_corrected(logits, labels)
    val_prior = torch.bincount(labels, minlength=logits.shape[1]).double() / len(labels)
    return PosthocFit(temperature=fit_temperature(logits, labels), tau=tau,
                      tau_temperature=fit_temperature(adjusted, labels),
                      train_prior=prior.tolist(), fitted_on=split, val_samples=len(labels),
                      bias_temperature=bias_temperature, bias=bias,
                      val_prior=val_prior.tolist(),
                      center_log_weights=center_log_weights)

