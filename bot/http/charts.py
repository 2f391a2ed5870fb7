"""Charts drawn on the server as inline SVG: no script, no CDN, themed by CSS colours."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 200, 32


def sales_svg(
    points: list[tuple[datetime, int]], *, label: str, empty: str = "No sales yet"
) -> Markup:
    """A step line of a count over time (`points` oldest first), with its maximum and its
    first and last dates marked. No points: an empty frame saying `empty`. Points at one
    moment (a sale and a refund in the same second) count as the last of them."""
    frame = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 8}" y2="{HEIGHT - PAD}" '
        'stroke="currentColor" stroke-opacity=".3"/>'
    )
    if not points:
        return Markup(
            frame + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
            f'fill="currentColor" fill-opacity=".6">{escape(empty)}</text></svg>'
        )
    merged: dict[datetime, int] = {}
    for at, count in points:
        merged[at] = count
    points = list(merged.items())
    first, last = points[0][0], points[-1][0]
    span = max((last - first).total_seconds(), 1.0)
    top = max(max(count for _, count in points), 1)
    inner_w, inner_h = WIDTH - PAD - 16, HEIGHT - 2 * PAD

    def x(at: datetime) -> float:
        return PAD + inner_w * (at - first).total_seconds() / span

    def y(count: int) -> float:
        return HEIGHT - PAD - inner_h * count / top

    path = [f"M{PAD:.1f},{y(0):.1f}"]
    previous = 0
    for at, count in points:
        path.append(f"L{x(at):.1f},{y(previous):.1f} L{x(at):.1f},{y(count):.1f}")
        previous = count
    path.append(f"L{WIDTH - 16:.1f},{y(previous):.1f}")
    return Markup(
        frame
        + f'<path d="{" ".join(path)}" fill="none" stroke="currentColor" stroke-width="2"/>'
        + f'<text x="4" y="{y(top) + 4:.1f}" fill="currentColor" font-size="12">{top}</text>'
        + f'<text x="4" y="{y(0) + 4:.1f}" fill="currentColor" font-size="12">0</text>'
        + f'<text x="{PAD}" y="{HEIGHT - 8}" fill="currentColor" font-size="12">'
        + f"{escape(first.strftime('%d %b %H:%M'))}</text>"
        + f'<text x="{WIDTH - 16}" y="{HEIGHT - 8}" text-anchor="end" fill="currentColor" '
        + f'font-size="12">{escape(last.strftime("%d %b %H:%M"))} UTC</text></svg>'
    )
