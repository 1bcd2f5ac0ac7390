"""The Recommendations section: for a fixed sample of users, what they rated
highest next to the two-stage recommender's top 10, and the answer for a
new user known by demographics only.

The answers are the pushed servables', called as a Python client would:
`tf.saved_model.load(<output-dir>/serving/recommender/<newest>)
.signatures['serving_default'](user_id=...)`. The recommender takes user
ids only, so the new user goes through the retrieval servable's
`serving_examples` signature (a tf.Example with the demographics), reached
through the recommender that holds it when one was pushed.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from report import html

# The sample: ML-100K's first users (synthetic data uses the same ids).
SAMPLE_USERS = ('1', '2', '3')
# A new user: demographics only, no id and no history.
COLD_START_USER = {'age': 30, 'gender': 'F', 'occupation': 'engineer',
                   'zip_code': '94110'}
TOP_RATED = 10


def newest_version(serving_dir: str, model: str) -> Optional[str]:
  """`<serving_dir>/<model>/<highest numeric version>`, or None."""
  base = os.path.join(serving_dir, model)
  if not os.path.isdir(base):
    return None
  versions = sorted((v for v in os.listdir(base) if v.isdigit()), key=int)
  return os.path.join(base, versions[-1]) if versions else None


@dataclasses.dataclass
class Answers:
  """The servables' answers for the sample and the new user."""
  recommender_path: Optional[str]
  retrieval_path: Optional[str]
  users: List[str]
  # user id -> [(movie id, title, score, predicted rating)], best first.
  recommended: Dict[str, List[tuple]]
  # [(movie id, title, retrieval score)], best first.
  cold_start: List[tuple]
  cold_start_source: str = ''


def query(serving_dir: str, users: Sequence[str]) -> Answers:
  """Calls the newest pushed recommender (and, for the new user, retrieval).

  Runs in the report's second process: TensorFlow is imported here.
  """
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from modules import retrieval_export  # pylint: disable=g-import-not-at-top
  recommender_path = newest_version(serving_dir, 'recommender')
  retrieval_path = newest_version(serving_dir, 'retrieval')
  answers = Answers(recommender_path, retrieval_path, list(users), {}, [])
  recommender = None
  if recommender_path and users:
    recommender = tf.saved_model.load(recommender_path)
    answer = recommender.signatures['serving_default'](
        user_id=tf.constant(list(users)))
    ids = answer['movie_ids'].numpy().astype(str)
    titles = answer['movie_titles'].numpy()
    scores, ratings = answer['scores'].numpy(), answer['ratings'].numpy()
    for row, user in enumerate(users):
      answers.recommended[user] = [
          (ids[row, i], titles[row, i].decode('utf-8', 'replace'),
           float(scores[row, i]), float(ratings[row, i]))
          for i in range(ids.shape[1]) if ids[row, i]]
  # The recommender holds the retrieval servable it was built from; its
  # `serve_examples` is that servable's `serving_examples` signature, so
  # the new user needs no second (seconds-long) load.
  if recommender is not None and hasattr(recommender, 'retrieval'):
    serve_examples = recommender.retrieval.serve_examples
    answers.cold_start_source = f'{recommender_path} (its retrieval servable)'
  elif retrieval_path:
    serve_examples = tf.saved_model.load(retrieval_path).signatures[
        'serving_examples']
    answers.cold_start_source = retrieval_path
  else:
    return answers
  example = retrieval_export.user_example(b'', COLD_START_USER)
  answer = serve_examples(examples=tf.constant([example]))
  ids = answer['movie_ids'].numpy().astype(str)[0][:TOP_RATED]
  titles = answer['movie_titles'].numpy()[0][:TOP_RATED]
  scores = answer['scores'].numpy()[0][:TOP_RATED]
  answers.cold_start = [(i, t.decode('utf-8', 'replace'), float(s))
                        for i, t, s in zip(ids, titles, scores) if i]
  return answers


def top_rated(ratings, user: str, count: int = TOP_RATED) -> List[tuple]:
  """A user's highest-rated movies (newest first among equals):
  [(movie id, title, rating)]."""
  rows = np.flatnonzero(ratings.user_ids == user)
  order = sorted(rows, key=lambda r: (-ratings.ratings[r],
                                      -ratings.timestamps[r]))[:count]
  return [(ratings.movie_ids[r], ratings.titles.get(ratings.movie_ids[r], ''),
           float(ratings.ratings[r])) for r in order]


def section(answers: Optional[Answers], ratings) -> html.Section:
  """Builds the Recommendations section."""
  part = html.Section('recommendations', 'Recommendations')
  if answers is None:
    part.note_missing('The servables were not called.')
    return part
  if not answers.recommender_path:
    part.note_missing('No recommender pushed under serving/recommender/: '
                      'a model was not blessed, or the run stopped early.')
  else:
    part.add(html.paragraph(f'Recommender: {answers.recommender_path} '
                            '(signature serving_default).', 'note'))
  part.data['users'] = {}
  for user in answers.users:
    rated = top_rated(ratings, user) if ratings is not None else []
    recommended = answers.recommended.get(user, [])
    part.data['users'][user] = {
        'top_rated': [list(r) for r in rated],
        'recommended': [list(r) for r in recommended]}
    heading = f'User {user}' + ('' if rated else
                                ' (no ratings in the data: an unknown user)')
    part.add(f'<h3>{html.escape(heading)}</h3><div class="row">'
             + html.table(['rated highest', 'rating'],
                          [[t, f'{r:g}'] for _, t, r in rated])
             + html.table(['recommended', 'score', 'predicted rating'],
                          [[t, s, p] for _, t, s, p in recommended],
                          f'recommended-{user}') + '</div>')
  part.add('<h3>A new user</h3>')
  description = ', '.join(f'{k} {v}' for k, v in COLD_START_USER.items())
  if not answers.cold_start_source:
    part.note_missing('No retrieval servable pushed: no answer for a new '
                      'user.')
  else:
    part.data['cold_start'] = {'user': COLD_START_USER,
                               'recommended': [list(r) for r in
                                               answers.cold_start]}
    part.add(html.paragraph(
        f'Known by demographics only ({description}); answered by the '
        f'retrieval servable\'s serving_examples signature '
        f'({answers.cold_start_source}): the recommender\'s own signature '
        'takes user ids only. Scores are retrieval scores (no ranking: the '
        'ranking model knows users by id).'))
    part.add(html.table(['recommended', 'retrieval score'],
                        [[t, s] for _, t, s in answers.cold_start],
                        'recommended-cold-start'))
  return part
