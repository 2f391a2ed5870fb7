"""The HTTP side of the core: operator JSON API, public pages, health and metrics."""

from bot.http.app import create_app

__all__ = ["create_app"]
