"""Stagepass core: domain, services, command grammar, persistence and the HTTP app.

Nothing in this package imports adapters/, billing/, scheduler/ or audio/ (an import-linter
contract in pyproject.toml checks it): they plug in through `bot.host` — entry points and
the `Host` the composition root (`bot.wiring`) hands each package's installer.

    bot/
      models.py        the persisted domain: communities, identities, Spaces, holds, tickets
      services/        the only code that changes domain state
        spaces, tickets, stage, reminders, promos, invites, hostdesk, identities
        uses            uses of invites and promo codes, counted in the claim's transaction
        communities     linked communities; where each Space is announced
        claims, confirmations   the claim and confirm batchers (group commit, no oversell)
        refusals, eligibility, audit, context
      commands/        one grammar for every platform: syntax -> types -> handlers
      http/            operator API, public pages, the host's desk, health, metrics, server
      events.py        domain events and the in-process bus
      notices.py       events -> messages for the people they concern (through the outbox)
      outbox.py        DMs kept until their platform delivers them
      permissions.py   who may do what: one table, one check
      ports.py         what the outer packages implement (payments, recorder)
      host.py          how packages plug in (Host, Package, entry points, install order)
      architecture.py  the README's table of allowed imports, drawn from the contracts
      wiring.py        the composition root: builds the core and the app, installs packages
      core.py          the services, built once and shared
      db.py, settings.py, logs.py, files.py, encryption.py, tokens.py, clock.py
      batching.py, ratelimits.py, refund_policy.py, money.py, wording.py, replies.py
      actors.py, errors.py, cli.py
"""
