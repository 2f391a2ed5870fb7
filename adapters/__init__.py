"""Chat platform adapters. Each only translates: platform event -> core command,
core event -> platform message."""
