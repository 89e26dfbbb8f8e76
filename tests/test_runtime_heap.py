"""runtime.settle_heap: what is alive at the call leaves the cyclic collector's work,
garbage made before it is collected, and the young generation is collected less often."""

from __future__ import annotations

import gc
import weakref

from smmc_gateway import runtime


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_settle_heap_freezes_the_living_and_collects_the_dead() -> None:
    before = gc.get_threshold()
    try:
        kept = Node()
        dead = Node()
        gone = weakref.ref(dead)
        del dead
        runtime.settle_heap()
        assert gone() is None  # collected first
        assert gc.get_freeze_count() > 0 and gc.is_tracked(kept)
        assert gc.get_threshold()[0] == runtime.GEN0_THRESHOLD
        # a second call (a reload) collects what became garbage meanwhile
        later = weakref.ref(kept)
        del kept
        runtime.settle_heap()
        assert later() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
