"""Activity categories of CMU clips, from CMU's own descriptions (``clip_index.csv``, the manifest).

Accuracy is reported per category because the data are mostly walking: a mean over all frames
says little about a dance or a squat. The first rule that matches a description wins, so a
"dance - ... jete" is dance, not a jump, and "jumping jacks, squats" is exercise.
"""
from __future__ import annotations

import re

#: (category, description pattern), tried in order.
RULES: tuple[tuple[str, str], ...] = (
    ("dance", r"danc|lambada|lindy|whirl|arabesque|pirouette|ballet|salsa"),
    ("exercise", r"jumping jack|squat|stretch|twist|bend over|sit-?up|push-?up|balance|yoga|"
                 r"reach up|scoop|wash"),
    ("sports", r"basketball|dribble|punch|strike|box|kick|sword|golf|soccer|football|tennis|throw|martial"),
    ("climb/sit", r"playground|climb|sit|hang|swing|crawl|lie|ladder"),
    ("jump", r"jump|hop|leap|\b(90|180|270|360)\b"),
    ("run", r"\brun|jog|sprint"),
    ("walk", r"walk|navigate|stride|march|limp|stroll|mummy|digital ?8|forward|turn"),
)
#: Every category, in report order.
CATEGORIES: tuple[str, ...] = ("walk", "run", "jump", "dance", "exercise", "sports", "climb/sit", "other")


def category(description: str) -> str:
    """The activity category of a clip from its CMU description ("other" when nothing matches)."""
    text = description.lower()
    for name, pattern in RULES:
        if re.search(pattern, text):
            return name
    return "other"
