"""Seeing the stream: a browser viewer of a live run or a recording (``realtime view``,
``realtime run --view``), and the page assets the HTML report of a recording shares with it.

``state.py`` turns wire messages into what the page draws, ``server.py`` serves the page and feeds
browsers over WebSockets, ``static/`` is the page (plotly.js for the 3D view, from the ``plotly``
package: nothing is loaded from the internet).
"""
from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the ``plotly`` Python package (offline, no CDN)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is not installed (pip install plotly): the viewer needs its plotly.js")
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"{path}: plotly.min.js is missing from the plotly package")
    return path


def inline_script(code: str) -> str:
    """JavaScript made safe inside an inline ``<script>`` element: ``</script`` would end it, and
    ``<\\/script`` means the same inside a JS string or regex."""
    import re

    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


def inline_json(data: object) -> str:
    """``data`` as JSON safe inside an inline ``<script type="application/json">`` element (every ``<``
    escaped as ``\\u003c``, which JSON.parse reads back)."""
    import json

    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def offline_page(template: str, title: str, data: object, scripts: tuple[str, ...] = ()) -> str:
    """A ``static/`` page template filled in as one self-contained offline file (``realtime estimate
    --draw-3d``, ``realtime export --format html``): ``{{TITLE}}`` (escaped), ``{{PLOTLY}}`` and
    ``{{SKELETON}}`` inlined, ``{{DATA}}`` as inline JSON, and each of ``scripts`` (``report.js`` ->
    ``{{REPORT}}``) inlined from ``static/``."""
    import html

    values = {"TITLE": html.escape(title), "PLOTLY": inline_script(plotly_js().read_text()),
              **{Path(name).stem.upper(): inline_script((STATIC / name).read_text())
                 for name in ("skeleton.js", *scripts)},
              "DATA": inline_json(data)}
    page = (STATIC / template).read_text()
    for name, value in values.items():
        page = page.replace(f"{{{{{name}}}}}", value, 1)
    return page
