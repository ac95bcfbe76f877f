"""Registry of named device parameter sets, each with its literature source.

``get(name)`` builds the device, ``names()`` lists them, ``describe(name)`` prints the
parameters with units and sources.
"""

from __future__ import annotations

from memxbar.devices import domain_wall, ferroelectric, ideal, measured, mtj, pcm, rram
from memxbar.devices.base import Device, Preset
from memxbar.errors import ConfigError

_REGISTRY: dict[str, Preset] = {
    p.name: p
    for m in (ideal, pcm, rram, ferroelectric, mtj, domain_wall, measured)
    for p in m.PRESETS
}


def names(technology: str | None = None) -> list[str]:
    """Preset names, optionally of one technology ("pcm", "rram", "fefet", "mtj", ...)."""
    return [n for n, p in _REGISTRY.items() if technology in (None, p.technology)]


def technologies() -> list[str]:
    """The technologies that have presets."""
    return sorted({p.technology for p in _REGISTRY.values()})


def preset(name: str) -> Preset:
    """The :class:`Preset` record of ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown device preset {name!r}; known presets: "
                         f"{', '.join(names())}") from None


def get(name: str) -> Device:
    """A fresh device model of the preset ``name``."""
    return preset(name).build()


def describe(name: str) -> str:
    """Preset summary, source and every parameter with unit and source."""
    p = preset(name)
    return f"{p.name}: {p.summary}\nsource: {p.source}\n{p.build().describe()}"
