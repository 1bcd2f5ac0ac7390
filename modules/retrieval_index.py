"""Retrieval indexes: exact brute force, or approximate ScaNN.

Plain TensorFlow, no TFX. `modules.retrieval_export` builds the servable's
index with these; `benchmarks/index_scaling.py` measures both.

- `brute_force` (default): every query scores every movie, a [N, D] matrix
  product and a top-K. Exact, no dependency beyond TensorFlow, and stock
  TF Serving serves it. Its cost grows linearly with the catalogue.
- `scann`: ScaNN (github.com/google-research/google-research/tree/master/
  scann): a k-means tree over the candidates, anisotropic-hashing (AH)
  scores within the leaves searched, then exact re-scoring of the best
  `num_reordering_candidates`. Approximate: its recall against brute force
  is measured, not assumed. ScaNN's TensorFlow ops are custom ops, so a
  SavedModel holding this index loads only where they are registered:
  `import scann` in a Python process, and a TF Serving build linked with
  the ScaNN ops (stock TF Serving answers "Op type not registered
  'Scann>...'"). The index is an optional dependency, `SCANN_REQUIREMENT`,
  the ScaNN release built for TensorFlow 2.16.
"""

import dataclasses
import math
import os
import uuid

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

from typing import Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402

BRUTE_FORCE = 'brute_force'
SCANN = 'scann'
INDEXES = (BRUTE_FORCE, SCANN)
# scann 1.3.1 and 1.3.2 require tensorflow~=2.16.0; 1.3.3 onwards 2.17+.
SCANN_REQUIREMENT = 'scann==1.3.2'
SCANN_INSTALL = f".venv/bin/python -m pip install '{SCANN_REQUIREMENT}'"
# Op names ScaNN registers, prefixed with its namespace.
SCANN_OP_PREFIX = 'Scann>'

# Below this many candidates ScaNN scores them all exactly (AH needs at
# least 16 points per codebook, the tree about 50 per leaf; and brute force
# over a few hundred vectors costs nothing).
MIN_PARTITIONED_CANDIDATES = 256
# Share of the catalogue whose leaves are searched; at least
# `SEARCHED_PER_RESULT` candidates per result asked for, so that small
# catalogues are searched whole.
SEARCHED_SHARE = 0.2
SEARCHED_PER_RESULT = 100
# Candidates re-scored exactly, per result asked for.
REORDERING_PER_RESULT = 20


def check_index(index: str) -> str:
  """`index` if it is a known index kind; ValueError naming them if not."""
  if index not in INDEXES:
    raise ValueError(f'Unknown retrieval index {index!r}; known: '
                     f'{", ".join(INDEXES)}')
  return index


def scann_ops():
  """ScaNN's TensorFlow ops module (registers the ops in this process).

  Raises:
    ImportError: ScaNN is not installed, or not a build for this
      TensorFlow; the message says what to install.
  """
  try:
    from scann import scann_ops as ops  # pylint: disable=g-import-not-at-top
  except (ImportError, tf.errors.NotFoundError) as e:
    raise ImportError(
        f"The '{SCANN}' retrieval index needs ScaNN's TensorFlow ops "
        f'({e}). Install the release built for TensorFlow '
        f'{tf.__version__[:4]}: {SCANN_INSTALL} (or the `scann` extra of '
        f"setup.py), or build the index with '{BRUTE_FORCE}'.") from e
  return ops


def scann_available() -> bool:
  """Whether ScaNN's ops load in this process."""
  try:
    scann_ops()
  except ImportError:
    return False
  return True


@dataclasses.dataclass(frozen=True)
class ScannParams:
  """A ScaNN configuration (the knobs of `tfrs.layers.factorized_top_k.ScaNN`).

  Attributes:
    num_leaves: k-means partitions of the candidates; 0 for none (every
      candidate scored exactly, for catalogues too small to partition).
    num_leaves_to_search: partitions whose candidates each query scores.
    num_reordering_candidates: best AH-scored candidates re-scored exactly.
    dimensions_per_block: AH compression: dimensions per 4-bit code.
    training_iterations: k-means iterations when building the tree.
  """
  num_leaves: int
  num_leaves_to_search: int
  num_reordering_candidates: int
  dimensions_per_block: int = 2
  training_iterations: int = 12


def scann_params(num_candidates: int, k: int) -> ScannParams:
  """The ScaNN configuration used for `num_candidates` and top `k`.

  sqrt(N) leaves (ScaNN's rule of thumb); the leaves searched cover 20% of
  the catalogue, and at least 100 candidates per result (which searches
  catalogues under 100 K whole: 1.7K movies); 20 K candidates re-scored
  exactly (2,000 for K = 100). Chosen on the synthetic 1M x 64 catalogue
  of `benchmarks/index_scaling.py`, where the leaves searched bound
  recall@100 (searching 5%, 10%, 20%, 40% of them: recall 0.904, 0.912,
  0.933, 0.975, in-op p50 0.45, 0.45, 0.83, 1.3 ms, against 24 ms for
  brute force); re-scoring 4,000 instead of 2,000 gained 0.2-0.4 points.

  Examples (K = 100): 1,682 -> 41 leaves, all searched; 60,000 -> 245
  leaves, 49 searched; 1,000,000 -> 1,000 leaves, 200 searched.
  """
  if num_candidates < 1 or k < 1:
    raise ValueError(f'need at least one candidate and k >= 1, got '
                     f'{num_candidates} candidates and k={k}')
  reordering = min(num_candidates, REORDERING_PER_RESULT * k)
  if num_candidates < MIN_PARTITIONED_CANDIDATES:
    return ScannParams(0, 0, reordering)
  leaves = max(1, round(math.sqrt(num_candidates)))
  share = max(SEARCHED_SHARE, SEARCHED_PER_RESULT * k / num_candidates)
  return ScannParams(leaves, min(leaves, math.ceil(leaves * share)),
                     reordering)


def build_scann(candidates: np.ndarray, k: int,
                params: Optional[ScannParams] = None) -> tf.Module:
  """A ScaNN searcher over `candidates` [N, D] (dot product), as the
  `tf.Module` of its state that a SavedModel keeps (`ScannIndex` searches
  it). `params` defaults to `scann_params(N, k)`."""
  ops = scann_ops()
  candidates = np.asarray(candidates, np.float32)
  if candidates.ndim != 2 or not len(candidates):
    raise ValueError(f'candidates must be [N, D] with N >= 1, got shape '
                     f'{candidates.shape}')
  params = params or scann_params(len(candidates), k)
  builder = ops.builder(candidates, k, 'dot_product')
  if params.num_leaves:
    builder = builder.tree(
        num_leaves=params.num_leaves,
        num_leaves_to_search=params.num_leaves_to_search,
        training_iterations=params.training_iterations).score_ah(
            params.dimensions_per_block).reorder(
                params.num_reordering_candidates)
  else:
    builder = builder.score_brute_force()
  # A unique name: ScaNN shares searchers of the same name in a process.
  return builder.build(
      shared_name=f'scann/{uuid.uuid4()}').serialize_to_module()


class ScannIndex(tf.Module):
  """Top-K over a ScaNN searcher, with per-query exclusions.

  Why not `tfrs.layers.factorized_top_k.ScaNN` (same configuration): with
  E exclusions a query must ask for K + E results, re-score at least as
  many (more than `num_reordering_candidates` for a heavy user) and search
  (K + E) / K times the leaves, which its `call` cannot ask for.
  """

  def __init__(self, candidates: np.ndarray, k: int,
               params: Optional[ScannParams] = None):
    """Builds the index.

    Args:
      candidates: [N, D] candidate embeddings; row i is candidate i.
      k: results per query (at most N).
      params: the ScaNN configuration; default `scann_params(N, k)`.
    """
    super().__init__()
    self._num_candidates = len(candidates)
    self._k = min(int(k), self._num_candidates)
    self.params = params or scann_params(self._num_candidates, self._k)
    self.state = build_scann(candidates, self._k, self.params)

  def top_k(self, queries: tf.Tensor,
            excluded: Optional[tf.RaggedTensor] = None,
            excluded_score: float = -1e9) -> Tuple[tf.Tensor, tf.Tensor]:
    """Best K candidates of each query, excluded ones scored apart.

    Args:
      queries: [B, D] float32 query embeddings.
      excluded: [B, None] int64 candidate rows to leave out per query,
        ascending within each row; None for none.
      excluded_score: the score an excluded (or missing) result gets, so
        that it sorts after every real one.

    Returns:
      (scores [B, K] float32, descending; rows [B, K] int64). A query with
      fewer than K results found (excluded, or in leaves too small) has
      `excluded_score` in the remaining places.
    """
    k, n = self._k, self._num_candidates
    wanted = tf.constant(k, tf.int64)
    if excluded is not None:
      wanted += tf.maximum(tf.reduce_max(excluded.row_lengths()), 0)
    wanted = tf.cast(tf.minimum(wanted, n), tf.int32)
    # Searching for K + E results, search and re-score (K + E) / K times
    # as much as for K: the extra results lie further from the query.
    widen = tf.cast(wanted, tf.float64) / k
    reordering = tf.minimum(n, tf.cast(tf.math.ceil(
        self.params.num_reordering_candidates * widen), tf.int32))
    leaves = tf.constant(-1)  # -1: as configured (or no tree).
    if self.params.num_leaves:
      leaves = tf.minimum(self.params.num_leaves, tf.cast(tf.math.ceil(
          self.params.num_leaves_to_search * widen), tf.int32))
    searcher = scann_ops().searcher_from_module(self.state)
    result = searcher.search_batched_parallel(
        queries, final_num_neighbors=wanted,
        pre_reorder_num_neighbors=tf.maximum(wanted, reordering),
        leaves_to_search=leaves)
    rows = tf.cast(result.indices, tf.int64)
    # Places a query did not fill come back as row 0 with a NaN score.
    scores = tf.where(tf.math.is_nan(result.distances),
                      tf.constant(excluded_score), result.distances)
    if excluded is not None:
      scores = tf.where(_is_in_sorted(excluded, rows, n),
                        tf.constant(excluded_score), scores)
    missing = tf.maximum(k - tf.shape(scores)[1], 0)
    scores = tf.pad(scores, [[0, 0], [0, missing]],
                    constant_values=excluded_score)
    rows = tf.pad(rows, [[0, 0], [0, missing]])
    top_scores, places = tf.math.top_k(scores, k=k)
    return top_scores, tf.gather(rows, places, batch_dims=1)


def _is_in_sorted(sorted_rows: tf.RaggedTensor, rows: tf.Tensor,
                  num_candidates: int) -> tf.Tensor:
  """[B, W] bool: rows[b, j] is one of sorted_rows[b] (ascending)."""
  dense = sorted_rows.to_tensor(default_value=num_candidates)
  # A last column above every row: the insertion point is always valid.
  dense = tf.concat([dense, tf.fill([tf.shape(dense)[0], 1],
                                    tf.constant(num_candidates, tf.int64))],
                    axis=1)
  places = tf.searchsorted(dense, rows, side='left')
  return tf.equal(tf.gather(dense, places, batch_dims=1), rows)


def uses_scann_ops(saved_model_dir: str) -> bool:
  """Whether the SavedModel in `saved_model_dir` calls ScaNN's custom ops
  (then its loader needs them: `scann_ops()`, or a TF Serving build
  linked with them)."""
  saved_model = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(saved_model_dir, 'saved_model.pb'),
                         'rb') as f:
    saved_model.ParseFromString(f.read())
  for meta_graph in saved_model.meta_graphs:
    graph = meta_graph.graph_def
    nodes = [graph.node] + [f.node_def for f in graph.library.function]
    if any(node.op.startswith(SCANN_OP_PREFIX)
           for node_list in nodes for node in node_list):
      return True
  return False


def load_custom_ops(saved_model_dir: str) -> None:
  """Registers in this process the custom ops the SavedModel in
  `saved_model_dir` calls (ScaNN's, for a servable with a ScaNN index), so
  that `tf.saved_model.load` can load it. Nothing to do for brute force.

  Raises:
    ImportError: the SavedModel needs ScaNN and it is not installed (the
      message says what to install).
  """
  if uses_scann_ops(saved_model_dir):
    scann_ops()


def recall_at_k(approximate: Sequence[Sequence[int]],
                exact: Sequence[Sequence[int]]) -> float:
  """Mean over queries of |approximate top K ∩ exact top K| / K.

  Args:
    approximate: per query, the rows an approximate index returned.
    exact: per query, the exact top K rows (brute force); K is the length
      of each row here.
  """
  if len(approximate) != len(exact) or not len(exact):
    raise ValueError(f'need the same number (>= 1) of approximate and '
                     f'exact answers, got {len(approximate)} and '
                     f'{len(exact)}')
  total = 0.0
  for found, truth in zip(approximate, exact):
    truth = set(np.asarray(truth).tolist())
    if not truth:
      raise ValueError('an exact answer is empty')
    total += len(truth & set(np.asarray(found).tolist())) / len(truth)
  return total / len(exact)
