"""Cost of one optimizer step on an embedding table, against its size.

    python -m benchmarks.optimizer_steps [--rows 2000,20000,162000]

One training step of a lookup of `--batch` random rows of a `rows` x
`--dim` table (the gradient is sparse, `tf.IndexedSlices`), for Keras' Adam
and for `modules.optimizers.LazyAdam`. Keras' Adam decays the moments of,
and moves, every row at every step, so its step grows with the table;
LazyAdam touches the looked-up rows only (modules/optimizers.py). ml-25m
has 162,541 users and 62,423 movies.
"""

import argparse
import json
import os
import time
from typing import Dict, Optional, Sequence

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')


def step_ms(optimizer_name: str, rows: int, dim: int, batch: int,
            steps: int) -> float:
  """Median milliseconds of one step (after warm-up)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from modules import optimizers  # pylint: disable=g-import-not-at-top
  optimizer = optimizers.build(optimizer_name, 0.001)
  table = tf.keras.layers.Embedding(rows, dim)
  table.build(None)

  @tf.function
  def step(ids):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(table(ids)))
    grads = tape.gradient(loss, table.trainable_variables)
    optimizer.apply_gradients(zip(grads, table.trainable_variables))

  ids = tf.random.uniform([batch], 0, rows, tf.int64, seed=0)
  for _ in range(3):
    step(ids)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step(ids)
    times.append(time.perf_counter() - start)
  times.sort()
  return 1000 * times[len(times) // 2]


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--rows', default='2000,20000,162000')
  parser.add_argument('--dim', type=int, default=64)
  parser.add_argument('--batch', type=int, default=512)
  parser.add_argument('--steps', type=int, default=30)
  args = parser.parse_args(argv)
  results: Dict[str, Dict[str, float]] = {}
  for rows in [int(r) for r in args.rows.split(',')]:
    results[str(rows)] = {
        name: round(step_ms(name, rows, args.dim, args.batch, args.steps), 3)
        for name in ('adam', 'lazy_adam')}
    print(f'{rows:>8} rows x {args.dim}: ' + ', '.join(
        f'{k} {v:.2f} ms/step' for k, v in results[str(rows)].items()),
          flush=True)
  print(json.dumps({'dim': args.dim, 'batch': args.batch,
                    'ms_per_step': results}))
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
