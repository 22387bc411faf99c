"""gradexplain: see why PyTorch's autograd gives the gradient it gives, and prove it right.

The Python API (``gradexplain.explain``, ``gradexplain.record``) is loaded on first use, so that
``import gradexplain`` (and the CLI's ``--help``) stays free of torch and SymPy.
"""
import sys
import types

__version__ = "0.1.0"
__all__ = ["explain", "record", "Explanation", "set_language", "language"]


class _Package(types.ModuleType):
    """The eval pipeline's module ``gradexplain.explain`` shares its name with the API function
    ``gradexplain.explain``; importing the module must not hide the function, so the package keeps
    its API names bound to the API (the module stays reachable through ``sys.modules`` and imports)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in __all__:
        from . import api  # heavy: torch, on first use of the API (PEP 562)

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradexplain' has no attribute {name!r}")
