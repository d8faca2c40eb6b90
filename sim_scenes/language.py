"""Instruction phrasings per task: a training set and a held-out set.

Held-out phrasings never appear in generated training data; evaluating on them measures
whether a policy understood the instruction or memorised its wording.
"""

from __future__ import annotations

import string

import numpy as np

PHRASINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "lift": {
        "train": ("pick up the {object}", "lift the {object}", "grab the {object} and lift it",
                  "raise the {object} off the table"),
        "heldout": ("take the {object} and hold it up", "could you lift up the {object}"),
    },
    "push": {
        "train": ("push the {object} to the {zone}", "slide the {object} onto the {zone}",
                  "move the {object} into the {zone} by pushing it"),
        "heldout": ("nudge the {object} over to the {zone}", "shove the {object} onto the {zone}"),
    },
    "place": {
        "train": ("put the {object} in the {container}", "place the {object} into the {container}",
                  "drop the {object} in the {container}"),
        "heldout": ("move the {object} so it ends up inside the {container}", "store the {object} in the {container}"),
    },
    "stack": {
        "train": ("stack the {object} on the {base}", "put the {object} on top of the {base}",
                  "place the {object} onto the {base}"),
        "heldout": ("set the {object} on the {base}", "build a tower with the {object} above the {base}"),
    },
}

INSTRUCTION_SETS = ("train", "heldout")
CHARSET = string.ascii_letters + string.digits + " ,.'-"
MAX_LENGTH = 128


def phrasings(task: str, instruction_set: str) -> tuple[str, ...]:
    if instruction_set not in INSTRUCTION_SETS:
        raise ValueError(f"unknown instruction set {instruction_set!r}; use one of {INSTRUCTION_SETS}")
    return PHRASINGS[task][instruction_set]


def instruct(task: str, instruction_set: str, rng: np.random.Generator, **names: str) -> str:
    """One instruction for `task`, e.g. instruct("lift", "train", rng, object="red cube")."""
    options = phrasings(task, instruction_set)
    return options[int(rng.integers(len(options)))].format(**names)
