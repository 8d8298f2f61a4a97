"""``rsa-bridge cache info|clear``: what the model-RDM cache holds, and emptying it."""
from __future__ import annotations

from rsa_bridge.app.argtypes import real

import argparse
import datetime as _dt
import os
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cache", help="show or clear the model-RDM cache",
        description="The on-disk cache of model RDMs (default $RSA_BRIDGE_CACHE or ~/.cache/rsa-bridge). "
                    "Entries are keyed by model, weights, preprocessing, layers, metric, stimulus file "
                    "contents and package version, so a changed input never reuses an old entry.",
    )
    p.add_argument("--cache", type=Path, metavar="DIR", help="cache folder (default: $RSA_BRIDGE_CACHE or "
                                                               "~/.cache/rsa-bridge)")
    actions = p.add_subparsers(dest="cache_action", metavar="ACTION")
    info = actions.add_parser("info", description="Where the model-RDM cache is, how many entries it holds and how much "
                              "disk they take, with one line per entry (model, layers, stimuli, last use).",
                              help="location, number of entries, size, and one line per entry")
    info.set_defaults(func=run_info)
    clear = actions.add_parser("clear", description="Remove the cache's own entries (all, or those unused for DAYS "
                               "days); files in the folder that the cache did not write are left in place.",
                               help="remove entries (all, or those unused for DAYS days); files the "
                                             "cache did not write are left in place")
    clear.add_argument("--older-than", type=real("--older-than", 0, 36_500), metavar="DAYS",
                       help="remove only entries not used for this many days")
    clear.set_defaults(func=run_clear)
    p.set_defaults(func=run_info)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _store(args: argparse.Namespace):
    from rsa_bridge.app.cache import ENV, RDMCache

    store = RDMCache(getattr(args, "cache", None))
    source = "--cache" if getattr(args, "cache", None) else (f"${ENV}" if os.environ.get(ENV) else "default")
    return store, source


def run_info(args: argparse.Namespace) -> int:
    store, source = _store(args)
    entries = store.entries()
    total = sum(e.size for e in entries)
    print(f"cache: {store.root} ({source})")
    print(f"entries: {len(entries)}, {_size(total)}")
    if entries:
        print(f"{'entry':12}  {'model':14} {'weights':25} {'stimuli':14} {'n':>6}  {'size':>10}  "
              f"{'created':19}  {'last used':16}  layers")
    for e in entries:
        used = _dt.datetime.fromtimestamp(e.last_used).isoformat(sep=" ", timespec="minutes")
        print(f"{e.key[:12]:12}  {e.model[:14]:14} {e.weights[:25]:25} {e.stimulus_set[:14]:14} {e.n_stimuli:>6}  "
              f"{_size(e.size):>10}  {e.created:19}  {used:16}  {e.layers}")
    left = store.leftovers()
    if left:
        print(f"{len(left)} temporary file(s) of interrupted writes ({_size(sum(p.stat().st_size for p in left))}); "
              "`rsa-bridge cache clear` removes them")
    _say_foreign(store, "not counted")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from rsa_bridge.errors import RSABridgeError

    if args.older_than is not None and args.older_than < 0:
        raise RSABridgeError(f"--older-than takes a number of days >= 0; got {args.older_than}")
    store, _ = _store(args)
    removed, freed = store.clear(args.older_than)
    which = "" if args.older_than is None else f" unused for {args.older_than:g} days"
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'}{which} ({_size(freed)}) from {store.root}")
    _say_foreign(store, "left in place")
    return 0


def _say_foreign(store, what: str) -> None:
    """One line about files in the cache folder that the cache did not write (never touched by it)."""
    count, names = store.foreign()
    if count:
        print(f"{count} file(s) in {store.root} were not written by the rsa-bridge cache and were {what} "
              f"({', '.join(names)}{', ...' if count > len(names) else ''})")
