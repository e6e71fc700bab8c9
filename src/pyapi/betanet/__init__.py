"""Betanet: a secure multi-layer overlay network.

The hot core is libbetanet, a C library compiled from Cython; this package drives that
same library (through ``betanet._native``) and adds transports, services and the CLI.

Capabilities live in submodules named after what they do — ``betanet.fec`` and so on —
and are imported on first use, so ``import betanet`` stays cheap.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

from betanet import errors
from betanet._native import core as _core
from betanet.errors import *  # noqa: F401,F403  (the hierarchy is part of the top-level API)

__version__: str = _core.version()
__all__ = ["__version__", "get_include", "get_library", "get_static_library", "cpu_features"]
__all__ += errors.__all__

_HERE = os.path.dirname(os.path.abspath(__file__))
_SUBMODULES = {"fec", "htx", "sphinx", "mix", "vrf", "navigator", "cli", "demo", "cgr", "dpp", "dtn", "fl", "mesh", "tls"}


def get_include() -> str:
    """Directory holding ``betanet.h`` (pass as ``-I`` to build C code against the library)."""
    return os.path.join(_HERE, "include")


def get_library() -> str:
    """Path of the shared libbetanet this package itself uses (for cffi, ctypes, linkers)."""
    for name in sorted(os.listdir(_HERE)):
        if name.startswith("libbetanet.so") or name.endswith(".dylib"):
            return os.path.join(_HERE, name)
    raise FileNotFoundError("libbetanet shared library is missing from the betanet package")


def get_static_library() -> str:
    """Path of the Python-free static libbetanet.a shipped with the package."""
    return os.path.join(_HERE, "libbetanet.a")


def cpu_features() -> list[str]:
    """Names of the SIMD features libbetanet detected and uses on this CPU."""
    bits = _core.cpu_features()
    return [name for name, bit in _core.CPU_FLAGS.items() if bits & bit]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"betanet.{name}")
    raise AttributeError(f"module 'betanet' has no attribute {name!r}")
