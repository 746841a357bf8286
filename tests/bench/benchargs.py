"""Types of the benchmarks' options, for argparse.

A bad value (a word where a count goes, a count below its least, a directory that is not there)
is a usage error that names the option, before anything is generated or started, never a
traceback half-way through a run.
"""

import argparse
import os


def at_least(least):
    """A whole number of at least least (1_000 and 1000 alike)."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
        if v < least:
            raise argparse.ArgumentTypeError("%d is less than %d" % (v, least))
        return v
    return parse


def seconds(text):
    """A number of seconds above 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text) from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError("%s: more than 0 seconds, and finite" % text)
    return v


def directory(text):
    """A directory that is there and that this user may write in."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError("%s: no such directory" % text)
    if not os.access(text, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError("%s: not writable" % text)
    return text


def size(text):
    """A number of records: 250000, 250k, 2.5M."""
    t = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    try:
        v = int(float(t[:-1] if mult > 1 else t) * mult)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError("%r is not a size (250000, 250k, 2.5M)" % text) from None
    if v < 1:
        raise argparse.ArgumentTypeError("%s: at least one record" % text)
    return v


def size_list(text):
    """Sizes separated by commas, each as size() reads it: the distinct ones, smallest first."""
    return sorted(set(size(s) for s in text.split(",")))
