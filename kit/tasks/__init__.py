"""kit.tasks: bounded in-process background work that may be lost (durable work: kit.jobs)."""

from kit.tasks.queue import QueueFull, Slot, TaskQueue

__all__ = ["QueueFull", "Slot", "TaskQueue"]
