"""Mixing arithmetic on 20 ms frames of 48 kHz mono s16 PCM (native byte order).

Pure Python on `array.array`: numpy is not a dependency of the project. The common cases are
made cheap instead: with zero or one voice in a tick nothing is added or clipped, with two a
speaker's mix-minus is simply the other voice, and clipping is skipped when the sum fits.
"""

from __future__ import annotations

import array
import math
import operator
from collections.abc import Iterable, Mapping

from audio.opus import SILENCE

_MAX: int = 32767
_MIN: int = -32768


def samples(pcm: bytes) -> array.array[int]:
    """View PCM bytes as signed 16-bit samples."""
    out = array.array("h")
    out.frombytes(pcm)
    return out


def level(frame: array.array[int]) -> float:
    """RMS level in [0, 1] (1 = full scale), from every 4th sample: enough for a meter."""
    picked = frame[::4]
    if not picked:
        return 0.0
    return math.sqrt(sum(map(operator.mul, picked, picked)) / len(picked)) / 32768.0


def _clipped(total: list[int]) -> bytes:
    if not total or (max(total) <= _MAX and min(total) >= _MIN):
        return array.array("h", total).tobytes()
    return array.array(
        "h", [_MAX if v > _MAX else (_MIN if v < _MIN else v) for v in total]
    ).tobytes()


class Mix:
    """One tick's mix: what listeners hear, and each voice's mix-minus on demand.

    ``frames`` holds the voices that produced audio this tick. A voice that did not (idle,
    no packets) hears the full mix, which is exactly what it would hear with itself removed.
    """

    __slots__ = ("_frames", "_minus", "_total", "listeners")

    def __init__(self, frames: Mapping[str, array.array[int]]) -> None:
        self._frames = dict(frames)
        self._minus: dict[str, bytes] = {}
        self._total: list[int] | None = None
        if not frames:
            self.listeners = SILENCE
        elif len(frames) == 1:
            (only,) = frames.values()
            self.listeners = only.tobytes()
        else:
            values: Iterable[array.array[int]] = frames.values()
            if len(frames) == 2:
                first, second = values
                self._total = list(map(operator.add, first, second))
            else:
                self._total = list(map(sum, zip(*values, strict=True)))
            self.listeners = _clipped(self._total)

    def minus(self, key: str) -> bytes:
        """The mix without voice ``key`` (its own voice never comes back to a speaker)."""
        own = self._frames.get(key)
        if own is None:
            return self.listeners
        cached = self._minus.get(key)
        if cached is not None:
            return cached
        if len(self._frames) == 1:
            out = SILENCE
        elif len(self._frames) == 2:
            (other,) = (f for k, f in self._frames.items() if k != key)
            out = other.tobytes()
        else:
            assert self._total is not None
            out = _clipped(list(map(operator.sub, self._total, own)))
        self._minus[key] = out
        return out
