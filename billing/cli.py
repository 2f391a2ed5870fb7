"""`stagepass billing ...`: the billing commands of the CLI (mounted by `bot.cli`)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Annotated

import typer

from bot.errors import ConfigError

app = typer.Typer(help="Billing (Stripe) maintenance.", no_args_is_help=True)

_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_span(text: str) -> timedelta:
    """`90m`, `24h`, `3d`, `1w` -> a timedelta."""
    match = _SPAN.match(text.lower())
    if match is None:
        raise typer.BadParameter("write it like 90m, 24h, 3d or 1w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@app.command()
def reconcile(
    since: Annotated[
        str, typer.Option(help="How far back to look: 90m, 24h, 3d, 1w (Stripe keeps 30 days).")
    ] = "3d",
) -> None:
    """Repair what missed webhooks left behind: paid checkouts without tickets, refunded
    or disputed payments with valid tickets, refunds still owed. Prints every change."""
    span = parse_span(since)

    async def main() -> int:
        from billing.assembly import Billing
        from bot.core import Core
        from bot.logs import configure
        from bot.settings import load_settings

        settings = load_settings()
        configure(settings.log_level, settings.log_format, None, secrets=settings.secret_values())
        core = Core.build(settings)
        try:
            await core.db.migrate(cipher=lambda: core.cipher)
            billing = Billing.build(core)
            try:
                report = await billing.reconcile(span)
            finally:
                await billing.aclose()
        finally:
            await core.close()
        print("\n".join(report.lines()))
        return 1 if report.errors else 0

    try:
        code = asyncio.run(main())
    except ConfigError as exc:
        typer.echo(f"stagepass: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)
