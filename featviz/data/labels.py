"""ImageNet class names: index (0..999, the logit order of ImageNet classifiers) -> readable label."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["imagenet_labels"]


@lru_cache(maxsize=1)
def _labels() -> tuple[str, ...]:
    text = resources.files("featviz").joinpath("assets", "imagenet_labels.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in logit order (the list torchvision ships, bundled offline).

    Example:
        >>> labels = imagenet_labels()
        >>> len(labels), labels[281], labels[967]
        (1000, 'tabby', 'espresso')
    """
    return list(_labels())
