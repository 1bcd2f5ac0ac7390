"""AtomicPusher: Pusher whose pushed version folder appears complete."""

from components.atomic_pusher.component import AtomicPusher
from components.atomic_pusher.staging import STAGING_PREFIX
from components.atomic_pusher.staging import remove_stale_staging

__all__ = ['AtomicPusher', 'STAGING_PREFIX', 'remove_stale_staging']
