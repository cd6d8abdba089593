"""What the panels share: an HTML message box, a figure as PNG bytes, the widgets' label style."""

from __future__ import annotations

import html
import io

__all__ = ["WIDE", "message_box", "figure_png"]

#: Widget style that gives a description its full width.
WIDE = {"description_width": "initial"}


def message_box(text: str, kind: str = "info") -> str:
    """An HTML message box; ``text`` is escaped. kind: info, ok, warning or error."""
    colour = {"info": "#1565c0", "ok": "#2e7d32", "warning": "#ef6c00", "error": "#c62828"}[kind]
    return (f'<div class="prkd-{kind}" style="border-left:4px solid {colour};padding:2px 8px;margin:2px 0;'
            f'white-space:normal;line-height:1.35">{html.escape(text)}</div>')


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (for an ``Image`` widget, which needs no kernel to hold it); closes
    it."""
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
