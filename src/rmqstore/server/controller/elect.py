"""Who becomes master: RocketMQ 5's DefaultElectPolicy (controller/.../elect/impl/), a pure
function of the candidates and what their last heartbeats said.

Candidates are the in-sync replicas; only with unclean election (enableElectUncleanMaster, off
by default) every member after them. Among the live ones: the old master if it is still
alive (and no other is asked for); the one asked for, or nobody; else the best by (epoch
descending, max offset descending, election priority ascending), ties to the lowest broker
id (Java: whichever its TreeSet keeps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LiveInfo:
    """What a broker's last heartbeat said (BrokerLiveInfo's election fields)."""

    epoch: int
    max_offset: int
    election_priority: int


def elect(sync_state_set: Iterable[int], all_members: Iterable[int] | None,
          old_master: int | None, preferred: int | None,
          live: Callable[[int], LiveInfo | None]) -> int | None:
    """The new master, or None. ``live(id)`` is the broker's last heartbeat while it is alive,
    None once it is not."""
    chosen = _try(sync_state_set, old_master, preferred, live)
    if chosen is None and all_members is not None:
        chosen = _try(all_members, old_master, preferred, live)
    return chosen


def _try(candidates: Iterable[int], old_master: int | None, preferred: int | None,
         live: Callable[[int], LiveInfo | None]) -> int | None:
    alive = {b: info for b in candidates if (info := live(b)) is not None}
    if not alive:
        return None
    if old_master in alive and (preferred is None or preferred == old_master):
        return old_master
    if preferred is not None:
        return preferred if preferred in alive else None
    return min(alive, key=lambda b: (-alive[b].epoch, -alive[b].max_offset,
                                     alive[b].election_priority, b))
