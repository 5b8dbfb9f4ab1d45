"""The benchmark workload: N scenarios shaped like CreateVideo with K slides.

    script -> voice
    script -> slide_prompt_i -> slide_image_i        (i = 1..K)
    voice + slide_image_1..K -> video                (fan-in)

Every system runs exactly this graph; `parents_of` is the ground truth the verifier checks
each run against, whatever mechanism a system used to express it.
"""

from __future__ import annotations

from dataclasses import dataclass

SCRIPT = "script"
VOICE = "voice"
VIDEO = "video"


def slide_prompt(index: int) -> str:
    return f"slide_prompt_{index}"


def slide_image(index: int) -> str:
    return f"slide_image_{index}"


def scenario_task_parents(slides: int) -> dict[str, tuple[str, ...]]:
    """Task name -> the names it depends on, for one scenario with `slides` slides."""
    parents: dict[str, tuple[str, ...]] = {SCRIPT: (), VOICE: (SCRIPT,)}
    for index in range(1, slides + 1):
        parents[slide_prompt(index)] = (SCRIPT,)
        parents[slide_image(index)] = (slide_prompt(index),)
    parents[VIDEO] = (VOICE, *(slide_image(index) for index in range(1, slides + 1)))
    return parents


def fan_in_parents(slides: int) -> tuple[str, ...]:
    return scenario_task_parents(slides)[VIDEO]


@dataclass(frozen=True)
class Workload:
    scenarios: int
    slides: int

    def __post_init__(self) -> None:
        if self.scenarios < 1:
            raise ValueError(f"scenarios must be >= 1, got {self.scenarios}")
        if self.slides < 1:
            raise ValueError(f"slides must be >= 1, got {self.slides}")

    @property
    def tasks_per_scenario(self) -> int:
        return 2 * self.slides + 3

    @property
    def total_tasks(self) -> int:
        return self.scenarios * self.tasks_per_scenario

    def scenario_ids(self) -> list[str]:
        width = len(str(self.scenarios))
        return [f"s{number:0{width}d}" for number in range(1, self.scenarios + 1)]

    def parents_of(self) -> dict[str, tuple[str, ...]]:
        return scenario_task_parents(self.slides)
