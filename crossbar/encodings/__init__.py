"""Weight encodings: how normalised weights become cells and converter outputs become weights.

:class:`Encoding` is the interface (``base.py``); :class:`Differential` (two columns or two
arrays), :class:`Offset` (one cell per weight and a reference column) and :class:`BitSlices`
(digits of another encoding on several cells) implement it. :func:`make_encoding` checks a
combination and builds it; add an encoding by subclassing :class:`StoredEncoding` (the
interface plus the weight resolution, conductance range and layout fields) and listing it in
``registry.REGISTRY``.
"""

from memxbar.crossbar.encodings.base import Encoding, StoredEncoding
from memxbar.crossbar.encodings.differential import Differential
from memxbar.crossbar.encodings.offset import Offset
from memxbar.crossbar.encodings.registry import ENCODINGS, LAYOUTS, REGISTRY, make_encoding
from memxbar.crossbar.encodings.sliced import BitSlices

__all__ = ["ENCODINGS", "LAYOUTS", "REGISTRY", "BitSlices", "Differential", "Encoding", "Offset",
           "StoredEncoding", "make_encoding"]
