"""Which digital modules have an analog replacement, and how they are converted.

A converter takes ``(module, hardware, mapping)`` and returns the module that replaces it: a new
analog module (its children are then not visited), or ``module`` itself, adapted (a container
whose children are converted in turn, e.g. a transformer layer kept off its fast path). A
converter raises :class:`Unsupported` to leave a module digital with a reason, which the
conversion report shows. :func:`register` adds a replacement for a new module type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from torch import nn

from memxbar.crossbar.tile import TileConfig
from memxbar.errors import ConfigError
from memxbar.mapping.config import MappingConfig

Converter = Callable[[nn.Module, TileConfig, "MappingConfig | None"], nn.Module]
_REGISTRY: dict[type[nn.Module], Converter] = {}
_M = TypeVar("_M", bound=nn.Module)


class Unsupported(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a converter: the module stays digital; the message says why."""


def register(digital_type: type[_M],
             converter: Callable[[_M, TileConfig, MappingConfig | None], nn.Module]) -> None:
    """Convert modules of ``digital_type`` (and its subclasses without a registration of
    their own) with ``converter``; replaces an earlier registration of that type."""
    if not (isinstance(digital_type, type) and issubclass(digital_type, nn.Module)):
        raise ConfigError(f"register: digital_type = {digital_type!r} is not an nn.Module "
                         "subclass")
    if not callable(converter):
        raise ConfigError(f"register: converter = {converter!r} is not callable")
    # the registry calls it only with modules of digital_type (converter_for): a type-indexed
    # map that the type system cannot state, hence the cast
    _REGISTRY[digital_type] = cast(Converter, converter)


def converter_for(module: nn.Module) -> Converter | None:
    """The converter registered for ``module``'s type or its nearest base class, or None."""
    for cls in type(module).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    return None


def replacing(base: type[_M], converter: Callable[[_M, TileConfig, MappingConfig | None],
                                                    nn.Module]
              ) -> Callable[[_M, TileConfig, MappingConfig | None], nn.Module]:
    """``converter`` for modules replaced by an analog module that runs ``base``'s forward:
    a subclass with a ``forward`` of its own stays digital (:class:`Unsupported`)."""
    def convert(module: _M, hardware: TileConfig, mapping: MappingConfig | None) -> nn.Module:
        if type(module).forward is not base.forward:
            raise Unsupported(f"{type(module).__name__} has its own forward (an analog "
                              f"{base.__name__} would not run it)")
        return converter(module, hardware, mapping)
    return convert


def registered() -> dict[type[nn.Module], Converter]:
    """A copy of the registry: digital module type -> converter."""
    return dict(_REGISTRY)
