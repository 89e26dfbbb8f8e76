"""smmc-gateway: a head-end gateway for smart electricity meters (DLMS/COSEM).

The protocol core is the Rust extension :mod:`smmc_gateway._core`; this package
is the asyncio shell around it.
"""

from smmc_gateway import _core

__version__ = _core.__version__

__all__ = ["__version__"]
