"""Chat platform adapters. Each only translates: platform event -> core command,
core event -> platform message. They do not import each other (an import-linter contract).

    adapters/
      discord/   slash commands, buttons, roles, scheduled events, Stage (discord.py)
      slack/     slash commands, Block Kit, modals, App Home, OAuth installs (slack-bolt)
      shell/     a terminal chat, and the in-memory chat the tests drive
"""
