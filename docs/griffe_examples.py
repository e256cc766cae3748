"""Griffe extensions for the API reference (mkdocs.yml): featviz docstrings -> what griffe's parser reads.

``ExampleSections``: featviz docstrings head their doctests ``Example:``; griffe's Google-style parser
knows only ``Examples:`` and would render the singular as an admonition of Markdown (``>>>`` turned into
nested quotes). ``SphinxRoles``: ``:func:`name``` -> inline code. Only the text griffe parses changes;
the source and the doctests are unchanged.
"""
from __future__ import annotations

import re

import griffe

_HEADER = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _HEADER.sub(r"\1Examples:", obj.docstring.value)


_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([\w.]+)`")


class SphinxRoles(griffe.Extension):
    """``:func:`~a.b``` (Sphinx roles, which Markdown does not know) -> ``b`` as inline code.

    Not cross-references: several roles name private helpers or names that are both a module and a
    function (``featviz.circuits.trace``), which the reference does not render as separate targets.
    """

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(lambda m: f"``{m.group(1).rsplit('.', 1)[-1]}``",
                                            obj.docstring.value)
