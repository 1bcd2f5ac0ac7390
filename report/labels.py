"""Readable names for TFMA's slice keys.

TFMA slices the ranking model on Transform outputs (`age_bucket_xf=3`);
the report shows what a bucket means (`age 25-30`) and names the raw
features.

Plain Python: the bucket of each age comes from the caller (who applies the
run's Transform graph to a range of ages).
"""

from typing import Dict, Mapping, Sequence, Tuple

FEATURE_NAMES = {'age_bucket_xf': 'age', 'gender': 'gender',
                 'genres': 'genre', 'occupation': 'occupation'}
GENDERS = {'F': 'women', 'M': 'men'}


def age_bucket_labels(buckets_by_age: Mapping[int, int],
                      missing_bucket: int) -> Dict[int, str]:
  """{bucket: 'age 25-30'} from the bucket of each (integer) age.

  The first bucket reads '<= max', the last '>= min', the missing-value
  bucket 'age unknown'. Example: {18: 0, 19: 0, 20: 1, 21: 1, 22: 2}, 3 ->
  {0: 'age <= 19', 1: 'age 20-21', 2: 'age >= 22', 3: 'age unknown'}.
  """
  ranges: Dict[int, Tuple[int, int]] = {}
  for age, bucket in sorted(buckets_by_age.items()):
    low, high = ranges.get(bucket, (age, age))
    ranges[bucket] = (min(low, age), max(high, age))
  labels = {}
  ordered = sorted(ranges)
  for bucket in ordered:
    low, high = ranges[bucket]
    if len(ordered) > 1 and bucket == ordered[0]:
      labels[bucket] = f'age <= {high}'
    elif len(ordered) > 1 and bucket == ordered[-1]:
      labels[bucket] = f'age >= {low}'
    else:
      labels[bucket] = f'age {low}-{high}' if low != high else f'age {low}'
  labels[missing_bucket] = 'age unknown'
  return labels


def slice_label(slice_key: Sequence[Tuple[str, object]],
                age_labels: Mapping[int, str]) -> str:
  """(('age_bucket_xf', 3),) -> 'age 25-30'; (('gender', 'F'),) ->
  'gender: women'; () -> 'overall'."""
  if not slice_key:
    return 'overall'
  parts = []
  for feature, value in slice_key:
    if isinstance(value, bytes):
      value = value.decode('utf-8', 'replace')
    if feature == 'age_bucket_xf':
      try:
        parts.append(age_labels.get(int(value), f'age bucket {value}'))
      except (TypeError, ValueError):
        parts.append(f'age bucket {value}')
    elif feature == 'gender':
      parts.append(f'gender: {GENDERS.get(str(value), value)}')
    else:
      parts.append(f'{FEATURE_NAMES.get(feature, feature)}: {value}')
  return ', '.join(parts)
