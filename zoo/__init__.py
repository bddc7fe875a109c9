"""zoo: a PyTorch Lightning model zoo, from linear regression to the MLP and beyond.

Kept import-free on purpose: ``python scripts/train.py --help`` must not pay for torch.
"""

__version__ = "0.1.0"
