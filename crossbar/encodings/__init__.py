"""Weight encodings: how normalised weights become cells and converter outputs become weights.

:class:`Encoding` is the interface (``base.py``); :class:`Differential` (two columns or two
arrays), :class:`Offset` (one cell per weight and a reference column) and :class:`BitSlices`
(digits of another encoding on several cells) implement it. :func:`make_encoding` checks a
combination and builds it; add an encoding by subclassing :class:`StoredEncoding` (the
interface plus the weight resolution, conductance range and layout fields) and listing it in
``registry.REGISTRY``.
"""

from .base import Encoding, StoredEncoding
from .differential import Differential
from .offset import Offset
from .registry import ENCODINGS, LAYOUTS, REGISTRY, make_encoding
from .sliced import BitSlices

__all__ = ["ENCODINGS", "LAYOUTS", "REGISTRY", "BitSlices", "Differential", "Encoding", "Offset",
           "StoredEncoding", "make_encoding"]
