"""Names the dead-code check (tests/layout/test_dead_code.py) must not report: hooks that
PyTorch, torchvision, timm or Python call by name, signal-handler and hook signatures, and the
public API that users call from their own code."""

# nn.Module / autograd / torchvision / timm hooks, called by the frameworks
forward  # noqa
get_extra_state  # noqa
set_extra_state  # noqa
make_params  # noqa (torchvision transforms v2)
_get_policies  # noqa (torchvision AutoAugment)
apply_op  # noqa (torchvision AutoAugment)
aug_fn  # noqa (timm RandAugment op)
benchmark  # noqa (torch.backends.cudnn.benchmark)
num_bins  # noqa (torchvision's augmentation-space signature)
frame  # noqa (signal handler signature)
incompatible_keys  # noqa (load_state_dict post hook signature)
# read from YAML by name, never as an attribute
differences  # noqa
# public API for users' own code (README, docs/design.md)
register_task  # noqa
register_method  # noqa
skipped  # noqa
FMNIST_MEAN  # noqa
FMNIST_STD  # noqa
