"""kit.tasks: bounded in-process background work (see README: when a durable queue is needed)."""

from kit.tasks.queue import QueueFull, Slot, TaskQueue

__all__ = ["QueueFull", "Slot", "TaskQueue"]
