"""featviz's HTML page templates: name -> a jinja2 template from ``featviz/assets/templates``; their
stylesheet.

One home for the templates every HTML page uses (the microscope site, ``fv.explain``'s page, the demo): they
are rendered with autoescaping and undefined names are errors.

Example:
    >>> template_env().get_template("demo.html").name
    'demo.html'
"""
from __future__ import annotations

from importlib.resources import files as package_files
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from featviz._io import atomic_write_text

__all__ = ["template_env", "write_css"]


def template_env() -> Environment:
    """The jinja2 environment of featviz's page templates (autoescaped HTML, undefined names are errors).

    Example:
        >>> template_env().from_string("{{ x }}").render(x="<b>")
        '&lt;b&gt;'
    """
    return Environment(loader=PackageLoader("featviz", "assets/templates"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def write_css(out: str | Path) -> Path:
    """Copy the pages' stylesheet to ``out/style.css``; returns its path.

    Example:
        >>> write_css("site").name
        'style.css'
    """
    css = package_files("featviz").joinpath("assets/templates/style.css").read_text()
    return atomic_write_text(Path(out) / "style.css", css)
