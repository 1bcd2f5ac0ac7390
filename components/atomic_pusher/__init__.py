"""AtomicPusher: Pusher whose pushed version folder appears complete."""

from components.atomic_pusher.component import AtomicPusher

__all__ = ['AtomicPusher']
