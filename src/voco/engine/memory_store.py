"""``--database memory`` with a bound: LangGraph's in-memory saver, pruned.

Why: ``InMemorySaver`` keeps every checkpoint of every step of every thread
forever, and each checkpoint's ``messages`` blob is a full copy of the
conversation, so memory grows with turns² per thread and without limit across
threads (506 → 1,139 MB in 5 minutes of 20 sessions). Memory mode promises no
durability anyway, so this saver keeps only the newest few checkpoints of each
thread, and at most ``max_threads`` threads: the least recently written thread
that no session holds is evicted (and forgotten by the thread store, so a
resume of it says ``thread_not_found`` instead of silently starting empty).
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.memory import InMemorySaver

KEEP_CHECKPOINTS = 3  # the latest is all a run reads; a few more for update_state


class BoundedMemorySaver(InMemorySaver):
    def __init__(
        self,
        max_threads: int = 1000,
        *,
        on_evict: Callable[[str], None] | None = None,
        keep: int = KEEP_CHECKPOINTS,
    ) -> None:
        if max_threads < 1 or keep < 1:
            raise ValueError("max_threads and keep must be at least 1")
        super().__init__()
        self.max_threads = max_threads
        self.keep = keep
        self._on_evict = on_evict
        self._recent: OrderedDict[str, None] = OrderedDict()  # least recently written first
        self._pins: Counter[str] = Counter()
        self._blob_keys: defaultdict[str, set[tuple[str, str, str, Any]]] = defaultdict(set)
        self.evicted = 0

    # ------------------------------------------------------------ sessions

    def pin(self, thread_id: str) -> None:
        """A session holds ``thread_id``: never evict it while held."""
        self._pins[thread_id] += 1

    def unpin(self, thread_id: str) -> None:
        self._pins[thread_id] -= 1
        if self._pins[thread_id] <= 0:
            del self._pins[thread_id]
            self._evict_beyond_bound()

    @property
    def threads(self) -> int:
        return len(self.storage)

    # ------------------------------------------------------------- writing

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        out = super().put(config, checkpoint, metadata, new_versions)
        thread_id = str(config["configurable"]["thread_id"])
        ns = str(config["configurable"]["checkpoint_ns"])
        self._blob_keys[thread_id].update((thread_id, ns, k, v) for k, v in new_versions.items())
        self._recent[thread_id] = None
        self._recent.move_to_end(thread_id)
        self._prune(thread_id, ns)
        self._evict_beyond_bound()
        return out

    def _prune(self, thread_id: str, ns: str) -> None:
        """Keep the newest ``keep`` checkpoints of the thread and the blobs they use."""
        saved = self.storage[thread_id][ns]
        if len(saved) <= self.keep:
            return
        for cid in sorted(saved)[: -self.keep]:  # ids sort by time (uuid6)
            del saved[cid]
            self.writes.pop((thread_id, ns, cid), None)
        used: set[tuple[str, Any]] = set()
        for stored in saved.values():
            versions = self.serde.loads_typed(stored[0]).get("channel_versions", {})
            used.update(versions.items())
        keys = self._blob_keys[thread_id]
        for key in [k for k in keys if k[1] == ns and (k[2], k[3]) not in used]:
            self.blobs.pop(key, None)
            keys.discard(key)

    def _evict_beyond_bound(self) -> None:
        idle = (t for t in list(self._recent) if t not in self._pins)
        while len(self.storage) > self.max_threads:
            victim = next(idle, None)
            if victim is None:  # every thread is held by a live session
                return
            self._forget(victim)

    def _forget(self, thread_id: str) -> None:
        self.storage.pop(thread_id, None)
        for key in self._blob_keys.pop(thread_id, set()):
            self.blobs.pop(key, None)
        for wkey in [k for k in self.writes if k[0] == thread_id]:
            del self.writes[wkey]
        self._recent.pop(thread_id, None)
        self.evicted += 1
        if self._on_evict is not None:
            self._on_evict(thread_id)

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        self._blob_keys.pop(thread_id, None)
        self._recent.pop(thread_id, None)
