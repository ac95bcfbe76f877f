"""Registry of named device parameter sets, each with its literature source.

``get(name)`` builds the device (``get(name, MTJ)``: checked to be, and typed as, that
class), ``names()`` lists them, ``describe(name)`` prints the parameters with units and
sources.
"""

from __future__ import annotations

from typing import TypeVar, overload

from memxbar.devices import domain_wall, ferroelectric, ideal, measured, mtj, pcm, rram
from memxbar.devices.base import Device, Preset
from memxbar.errors import ConfigError

D = TypeVar("D", bound=Device)
_REGISTRY: dict[str, Preset] = {
    p.name: p
    for m in (ideal, pcm, rram, ferroelectric, mtj, domain_wall, measured)
    for p in m.PRESETS
}


def names(technology: str | None = None) -> list[str]:
    """Preset names, optionally of one technology (:func:`technologies`: "pcm", "rram",
    "fefet", "mtj", ...; matched without regard to case)."""
    if technology is None:
        return list(_REGISTRY)
    known = technologies()
    if not isinstance(technology, str) or technology.lower() not in {t.lower() for t in known}:
        raise ConfigError(f"presets.names: technology = {technology!r} is not known; allowed: "
                          f"{', '.join(known)} (or None for all)")
    return [n for n, p in _REGISTRY.items() if p.technology.lower() == technology.lower()]


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


@overload
def get(name: str) -> Device: ...


@overload
def get(name: str, kind: type[D]) -> D: ...


def get(name: str, kind: type[Device] = Device) -> Device:
    """A fresh device model of the preset ``name``. ``kind``: the model class it must be, for
    code that uses that class's own parameters (``presets.get("mtj-neurosim", MTJ).r_p``,
    typed as an MTJ); another class is a ConfigError naming the preset's."""
    if not (isinstance(kind, type) and issubclass(kind, Device)):
        raise ConfigError(f"presets.get: kind = {kind!r} is not a Device class")
    dev = preset(name).build()
    if not isinstance(dev, kind):
        raise ConfigError(f"device preset {name!r} is a {type(dev).__name__}, not a "
                          f"{kind.__name__}")
    return dev


def describe(name: str) -> str:
    """Preset summary, source and every parameter with unit and source."""
    p = preset(name)
    return f"{p.name}: {p.summary}\nsource: {p.source}\n{p.build().describe()}"
