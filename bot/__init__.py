"""Stagepass core: domain, services, command grammar, persistence and the HTTP app.

Nothing in this package imports adapters/, billing/, scheduler/ or audio/ (an import-linter
contract in pyproject.toml checks it): they plug in through `bot.host` — entry points and
the `Host` the composition root (`bot.wiring`) hands each package's installer.
"""
