"""The processes of a dataset run: one, or those ``torchrun`` starts (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` in the environment).

The default process group uses NCCL on CUDA and gloo on CPU; the ranks coordinate (the work
plan, the final barrier) through a gloo group, so a dead rank is named by gloo's monitored
barrier whatever the device. Messages between ranks are JSON in a uint8 tensor, never pickles.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from i2s.errors import I2SError

# Ranks wait this long at the start (rank 0 lists and hashes the dataset) and at the end
# (for the slowest rank); a rank that dies is noticed at once by its closed connection.
WAIT = datetime.timedelta(days=7)


@dataclass
class Ranks:
    """Where this process stands among the run's processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    started: bool = field(default=False, repr=False)
    _group: Any = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Ranks:
        """This process's place from torchrun's variables (one process without them)."""
        env = os.environ if env is None else env
        try:
            rank, world = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError:
            raise I2SError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers") from None
        if not (world >= 1 and 0 <= rank < world and local >= 0):
            raise I2SError(f"rank {rank} of {world} processes: not a valid place")
        return cls(rank, world, local)

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, kind: str) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA (one GPU per process)."""
        if kind == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise I2SError(f"local rank {self.local_rank} has no GPU (this machine has "
                               f"{torch.cuda.device_count()}): start at most that many "
                               "processes per node")
            return torch.device("cuda", self.local_rank)
        return torch.device(kind)

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL for CUDA, gloo otherwise) and make the gloo group
        the ranks coordinate through. Nothing to do for one process."""
        if not self.distributed or self.started:
            return
        import torch.distributed as dist  # noqa: PLC0415 (only multi-process runs need it)

        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            if not dist.is_initialized():
                dist.init_process_group(backend, timeout=WAIT,
                                        device_id=device if backend == "nccl" else None)
            self._group = dist.new_group(backend="gloo", timeout=WAIT) \
                if backend != "gloo" else dist.group.WORLD
        except (RuntimeError, ValueError) as e:   # no MASTER_ADDR, rendezvous failed, ...
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
            raise I2SError(f"rank {self.rank} of {self.world} could not join the process "
                           f"group ({backend}): {first[:200]}; start the processes with "
                           "torchrun") from None
        self.started = True

    def stop(self) -> None:
        if self.started:
            import torch.distributed as dist  # noqa: PLC0415

            dist.destroy_process_group()
            self.started = False

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (anything JSON can hold) on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist  # noqa: PLC0415

        data = json.dumps(obj).encode() if self.rank == 0 else b""
        size = torch.tensor([len(data)], dtype=torch.int64)
        dist.broadcast(size, 0, group=self._group)
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8) if self.rank == 0 \
            else torch.empty(int(size), dtype=torch.uint8)
        dist.broadcast(buf, 0, group=self._group)
        return obj if self.rank == 0 else json.loads(bytes(buf.numpy()).decode())

    def wait_for_all(self) -> str | None:
        """Wait until every rank gets here; None, or gloo's one-line reason when a rank
        cannot (it died)."""
        if not self.distributed:
            return None
        import torch.distributed as dist  # noqa: PLC0415

        try:
            dist.monitored_barrier(group=self._group, timeout=WAIT, wait_all_ranks=True)
        except RuntimeError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            return lines[0][:300] if lines else "a rank did not reach the end"
        return None
