"""The shell adapter: a terminal chat against the real core (and the tests' chat).

adapters/shell/
  chat.py      Chat: an in-memory platform (people type, read replies, DMs, the channel)
  repl.py      the terminal loop: type commands as someone, see what they would see
  cli.py       `stagepass shell` (the ``stagepass.commands`` entry point)
  package.py   the installer: the ``"chat"`` and ``"console"`` services
"""
