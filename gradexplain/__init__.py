"""gradexplain: see why PyTorch's autograd gives the gradient it gives, and prove it right."""

__version__ = "0.1.0"
