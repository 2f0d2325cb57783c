"""Matcher discovery through the ``idbench.matchers`` entry-point group.

Built-in matchers register exactly like third-party plugins (see ``pyproject.toml``).
A plugin that fails to import is reported with status ``broken`` (and a warning), never
a crash of the whole tool; two distributions registering the same name is an error that
names both.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GROUP", "Entry", "RegistryError", "discover", "load_matcher_class"]

log = logging.getLogger(__name__)

GROUP = "idbench.matchers"


class RegistryError(LookupError):
    """An unknown matcher name, a broken plugin that was asked for, or a duplicate name."""


@dataclass(frozen=True)
class Entry:
    """One registered matcher."""

    name: str
    target: str
    distribution: str
    version: str
    cls: type | None
    error: str | None

    @property
    def status(self) -> str:
        """``ok`` or ``broken``."""
        return "ok" if self.error is None else "broken"


def _dist_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"], dist.version


def _load(ep: md.EntryPoint) -> tuple[type | None, str | None]:
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure marks the plugin broken
        return None, f"{type(exc).__name__}: {exc}"
    if not isinstance(obj, type) or not callable(getattr(obj, "match", None)):
        return None, f"{ep.value} is not a matcher class (needs a match() method)"
    if getattr(obj, "name", None) != ep.name:
        return (
            None,
            f"class attribute name={getattr(obj, 'name', None)!r} differs from entry point {ep.name!r}",
        )
    return obj, None


def discover() -> dict[str, Entry]:
    """All registered matchers by name, loaded; broken ones carry their error.

    Raises
    ------
    RegistryError
        When two distributions register the same name.
    """
    entries: dict[str, Entry] = {}
    for ep in md.entry_points(group=GROUP):
        dist, version = _dist_of(ep)
        if ep.name in entries:
            prev = entries[ep.name]
            if (prev.target, prev.distribution) == (ep.value, dist):
                continue  # the same distribution seen twice on sys.path
            msg = (
                f"matcher name {ep.name!r} is registered twice: by {prev.distribution} "
                f"({prev.target}) and by {dist} ({ep.value}); uninstall or rename one"
            )
            raise RegistryError(msg)
        cls, error = _load(ep)
        if error:
            log.warning("matcher plugin %r from %s is broken: %s", ep.name, dist, error)
        entries[ep.name] = Entry(ep.name, ep.value, dist, version, cls, error)
    return dict(sorted(entries.items()))


def load_matcher_class(spec: str, *, python_path: list[str | Path] | None = None) -> type:
    """Resolve a registered name or an import path ``module:Class`` to a matcher class.

    Parameters
    ----------
    spec
        An entry-point name (``exact``) or ``package.module:Class`` for a matcher that is
        not installed as a plugin (handy while developing one).
    python_path
        Extra directories to put on ``sys.path`` for import paths.
    """
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        for p in python_path or []:
            if str(p) not in sys.path:
                sys.path.insert(0, str(p))
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            msg = f"cannot import matcher {spec!r}: {exc}"
            raise RegistryError(msg) from exc
    # Load only the named plugin: importing every plugin (Splink...) costs seconds per run.
    eps = [ep for ep in md.entry_points(group=GROUP) if ep.name == spec]
    if not eps:
        names = sorted({ep.name for ep in md.entry_points(group=GROUP)})
        close = difflib.get_close_matches(spec, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        msg = f"no matcher named {spec!r} (registered: {', '.join(names)}){hint}"
        raise RegistryError(msg)
    if len({(ep.value, _dist_of(ep)[0]) for ep in eps}) > 1:
        discover()  # raises, naming both distributions
    cls, error = _load(eps[0])
    if cls is None:
        msg = f"matcher {spec!r} from {_dist_of(eps[0])[0]} is broken: {error}"
        raise RegistryError(msg)
    return cls
