"""Tests of the Discord adapter: the real discord.py client against a local fake Discord."""

import warnings

with warnings.catch_warnings():
    # discord.py's voice player imports audioop, deprecated since Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401
