"""One refusal for the keywords a public function no longer takes because they moved into an options object.

It lives in the lowest layer (standard library only) so that ``stimuli`` and every layer above share it.

Issue 24: no library function takes more than 10 parameters, so the rarer knobs of a public function live in
a small frozen options dataclass (e.g. :class:`rsa_bridge.stats.bootstrap.BootstrapOptions`). A caller that
still passes one of them as a keyword gets a TypeError — as Python says of any keyword a function does not
take — naming the options field to use. There is no deprecation path.

Example::

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Knobs:
    ...     depth: int = 1
    >>> refuse_keywords("dig", {}, Knobs)        # nothing stray: nothing happens
    >>> refuse_keywords("dig", {"depth": 2}, Knobs)
    Traceback (most recent call last):
    ...
    TypeError: dig() got an unexpected keyword argument 'depth': it moved into the options; pass options=Knobs(depth=...)
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping


def refuse_keywords(where: str, stray: Mapping[str, Any], options_type: type, parameter: str = "options") -> None:
    """Raise TypeError for the first keyword of ``stray`` (what a ``**kwargs`` caught), naming its new home.

    ``where``: the function's name; ``options_type``: the options dataclass; ``parameter``: the name of the
    function's parameter that takes it. Returns None when ``stray`` is empty.
    """
    if not stray:
        return
    known = [f.name for f in fields(options_type)]
    moved = [k for k in stray if k in known]
    if moved:
        raise TypeError(f"{where}() got an unexpected keyword argument {moved[0]!r}: it moved into the options; pass "
                        f"{parameter}={options_type.__name__}({', '.join(f'{k}=...' for k in moved)})")
    raise TypeError(f"{where}() got an unexpected keyword argument {sorted(stray)[0]!r} "
                    f"({options_type.__name__} fields: {', '.join(known)})")
