"""Stagepass core: domain, services, command grammar, persistence and the HTTP app.

Nothing in this package imports adapters/, billing/, scheduler/ or audio/ — except the
composition root (`bot.wiring`) and the CLI, which know every package.
"""
