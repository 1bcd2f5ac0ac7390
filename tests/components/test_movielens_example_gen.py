"""MovieLensExampleGen: construction, executor on tiny raw fixtures (ml-100k,
ml-1m, the CSV layout of ml-25m), and every kind of bad input."""

import glob
import gzip
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.movielens_example_gen import MovieLensExampleGen
from components.movielens_example_gen import driver, executor, ingest, spec
from movielens import layout as raw

pytestmark = pytest.mark.integration

# Three users, five movies. Timestamps are chosen so the per-user split is
# easy to compute by hand (eval_fraction 0.2 -> floor(n * 0.2) newest):
#   user 1: 5 ratings -> 1 eval (movie 4 at t=500, the newest)
#   user 2: 5 ratings, two tied at t=900 -> 1 eval; tie broken by movie id,
#           so movie '3' (t=900) is newer than movie '2' (t=900)
#   user 3: 4 ratings -> floor(0.8) = 0 eval, all train
U_DATA = """\
1\t1\t5\t100
1\t2\t3\t200
1\t3\t4\t300
1\t4\t1\t500
1\t5\t2\t400
2\t1\t4\t600
2\t2\t5\t900
2\t3\t2\t900
2\t4\t3\t700
2\t5\t1\t800
3\t1\t5\t50
3\t2\t4\t60
3\t3\t3\t70
3\t4\t2\t80
"""
U_USER = """\
1|24|M|technician|85711
2|53|F|other|94043
3|23|M|writer|32067
"""
_FLAGS = ['0'] * 19


def _flags(*genres):
  flags = list(_FLAGS)
  for genre in genres:
    flags[raw.ML100K_GENRES.index(genre)] = '1'
  return '|'.join(flags)


U_ITEM = (
    f'1|Toy Story (1995)|01-Jan-1995|||{_flags("Animation", "Comedy")}\n'
    f'2|Mis\xe9rables, Les (1995)|01-Jan-1995|||{_flags("Drama")}\n'
    f'3|unknown||||{_flags("unknown")}\n'
    f'4|Heavy Metal (1981)|08-Mar-1981|||{_flags("Action", "Horror")}\n'
    f'5|Heat (1995)|01-Jan-1995|||{_flags("Action", "Crime")}\n')


def write_raw(folder, u_data=U_DATA, u_item=U_ITEM, u_user=U_USER):
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, 'u.data'), 'w', encoding='ascii') as f:
    f.write(u_data)
  with open(os.path.join(folder, 'u.item'), 'w', encoding='latin-1') as f:
    f.write(u_item)
  with open(os.path.join(folder, 'u.user'), 'w', encoding='latin-1') as f:
    f.write(u_user)
  return str(folder)


def read_examples(artifact, split):
  paths = glob.glob(os.path.join(artifact.uri, f'Split-{split}', '*.gz'))
  assert paths, f'no files in {artifact.uri}/Split-{split}'
  examples = []
  for path in sorted(paths):
    for record in tf.data.TFRecordDataset(path, compression_type='GZIP'):
      examples.append(tf.train.Example.FromString(record.numpy()))
  return examples


def value(example, key):
  feature = example.features.feature[key]
  kind = feature.WhichOneof('kind')
  if kind is None:
    return None
  values = list(getattr(feature, kind).value)
  if kind == 'bytes_list':
    values = [v.decode('utf-8') for v in values]
  return values


def run_executor(tmp_path, data_dir, eval_fraction=0.2, max_eval_ratings=None):
  ratings = standard_artifacts.Examples()
  ratings.uri = str(tmp_path / 'out' / 'ratings')
  movies = standard_artifacts.Examples()
  movies.uri = str(tmp_path / 'out' / 'movies')
  os.makedirs(ratings.uri)
  os.makedirs(movies.uri)
  executor.Executor().Do(
      {}, {spec.RATINGS_KEY: [ratings], spec.MOVIES_KEY: [movies]},
      {spec.INPUT_BASE_KEY: data_dir, spec.EVAL_FRACTION_KEY: eval_fraction,
       spec.MAX_EVAL_RATINGS_KEY: max_eval_ratings})
  return ratings, movies


def test_component_outputs_and_exec_properties():
  component = MovieLensExampleGen(input_base='/data/ml-100k',
                                  eval_fraction=0.25)
  assert set(component.outputs) == {'ratings', 'movies'}
  assert component.outputs['ratings'].type is standard_artifacts.Examples
  assert component.exec_properties['input_base'] == '/data/ml-100k'
  assert component.exec_properties['eval_fraction'] == 0.25
  assert component.exec_properties['max_eval_ratings'] is None
  assert MovieLensExampleGen(input_base='/x', max_eval_ratings=7
                            ).exec_properties['max_eval_ratings'] == 7
  with pytest.raises(ValueError, match='max_eval_ratings'):
    MovieLensExampleGen(input_base='/x', max_eval_ratings=-1)
  assert component.driver_class is driver.Driver


@pytest.mark.parametrize('fraction', [0.0, 1.0, -0.1])
def test_component_rejects_bad_eval_fraction(fraction):
  with pytest.raises(ValueError, match='eval_fraction'):
    MovieLensExampleGen(input_base='/x', eval_fraction=fraction)


def test_num_eval_ratings_is_floor():
  assert [ingest.num_eval_ratings(n, 0.2) for n in (1, 4, 5, 9, 10, 11)] == [
      0, 0, 1, 1, 2, 2]


def test_executor_joins_features_and_splits_per_user_by_time(tmp_path):
  ratings, movies = run_executor(tmp_path, write_raw(tmp_path / 'raw'))

  assert artifact_utils.decode_split_names(ratings.split_names) == [
      'train', 'eval']
  assert artifact_utils.decode_split_names(movies.split_names) == ['catalog']
  train = read_examples(ratings, 'train')
  eval_ = read_examples(ratings, 'eval')
  assert len(train) == 12 and len(eval_) == 2

  held_out = sorted((value(e, 'user_id')[0], value(e, 'movie_id')[0],
                     value(e, 'timestamp')[0]) for e in eval_)
  assert held_out == [('1', '4', 500), ('2', '3', 900)]
  # No user's eval rating is older than any of their train ratings.
  for user, _, eval_time in held_out:
    assert max(value(e, 'timestamp')[0] for e in train
               if value(e, 'user_id')[0] == user) <= eval_time

  example = next(e for e in eval_ if value(e, 'user_id') == ['1'])
  assert value(example, 'rating') == [1.0]
  assert value(example, 'age') == [24]
  assert value(example, 'gender') == ['M']
  assert value(example, 'occupation') == ['technician']
  assert value(example, 'zip_code') == ['85711']
  assert value(example, 'title') == ['Heavy Metal (1981)']
  assert value(example, 'release_year') == [1981]
  assert value(example, 'genres') == ['Action', 'Horror']


def test_eval_user_rate_bounds_the_eval_split():
  assert ingest.eval_user_rate(5_000_000, 1_000_000) == 0.2
  assert ingest.eval_user_rate(800_000, 1_000_000) == 1.0
  assert ingest.eval_user_rate(5_000_000, 0) == 1.0  # No bound.
  # Users' shares are fixed and spread over [0, 1).
  shares = [ingest.user_share(str(u)) for u in range(10_000)]
  assert shares[:3] == [ingest.user_share(str(u)) for u in range(3)]
  assert 0.0 <= min(shares) and max(shares) < 1.0
  assert abs(sum(s < 0.2 for s in shares) / len(shares) - 0.2) < 0.02


def test_executor_holds_out_a_sample_of_users_beyond_max_eval_ratings(
    tmp_path):
  # Users 1 and 2 would give one eval rating each (2 > 1): the rate is 1/2.
  # User shares: '1' 0.42, '2' 0.83, '3' 0.30, so user 1 is held out and
  # user 2's ratings all go to train (user 3 has none to hold out).
  assert ingest.user_share('1') < 0.5 < ingest.user_share('2')
  ratings, _ = run_executor(tmp_path, write_raw(tmp_path / 'raw'),
                            max_eval_ratings=1)
  train = read_examples(ratings, 'train')
  eval_ = read_examples(ratings, 'eval')
  assert [(value(e, 'user_id')[0], value(e, 'movie_id')[0])
          for e in eval_] == [('1', '4')]
  assert len(train) == 13
  assert sum(value(e, 'user_id') == ['2'] for e in train) == 5


def test_executor_writes_the_whole_catalogue(tmp_path):
  _, movies = run_executor(tmp_path, write_raw(tmp_path / 'raw'))
  catalog = {value(e, 'movie_id')[0]: e for e in read_examples(movies,
                                                                'catalog')}
  assert sorted(catalog) == ['1', '2', '3', '4', '5']
  # u.item is latin-1; titles come out as proper Unicode.
  assert value(catalog['2'], 'title') == ['Misérables, Les (1995)']
  assert value(catalog['1'], 'genres') == ['Animation', 'Comedy']
  # Unknown release date: the feature is absent, not faked.
  assert 'release_year' not in catalog['3'].features.feature
  assert set(catalog['1'].features.feature) == {
      'movie_id', 'title', 'release_year', 'genres'}


def test_driver_fingerprint_changes_with_the_data(tmp_path):
  data_dir = write_raw(tmp_path / 'raw')
  before = driver.input_fingerprint(data_dir)
  assert driver.input_fingerprint(data_dir) == before
  with open(os.path.join(data_dir, 'u.data'), 'a') as f:
    f.write('3\t1\t4\t90\n')
  assert driver.input_fingerprint(data_dir) != before


def _expect_bad_input(tmp_path, data_dir, *fragments):
  with pytest.raises(raw.RawDataError) as error:
    run_executor(tmp_path, data_dir)
  message = str(error.value)
  for fragment in fragments:
    assert fragment in message, message
  # Nothing half-written: both output folders are empty.
  for name in ('ratings', 'movies'):
    assert os.listdir(tmp_path / 'out' / name) == []
  return message


def test_malformed_ratings_line_is_named_by_file_line_and_field(tmp_path):
  bad = U_DATA.replace('1\t3\t4\t300\n', '1\t3\tfour\t300\n')
  data_dir = write_raw(tmp_path / 'raw', u_data=bad)
  _expect_bad_input(tmp_path, data_dir, 'u.data:3', "field 'rating'",
                    "'four'")


def test_wrong_field_count(tmp_path):
  bad = U_DATA.replace('2\t1\t4\t600\n', '2 1 4 600\n')
  data_dir = write_raw(tmp_path / 'raw', u_data=bad)
  _expect_bad_input(tmp_path, data_dir, 'u.data:6', '4 TAB-separated fields')


@pytest.mark.parametrize('rating', ['0', '6', '5.5'])
def test_rating_outside_1_to_5(tmp_path, rating):
  bad = U_DATA.replace('3\t2\t4\t60\n', f'3\t2\t{rating}\t60\n')
  data_dir = write_raw(tmp_path / 'raw', u_data=bad)
  _expect_bad_input(tmp_path, data_dir, 'u.data:12', "field 'rating'",
                    'a number from 1 to 5')


def test_rating_for_unknown_movie_and_user(tmp_path):
  bad = U_DATA + '1\t99\t4\t999\n7\t1\t4\t999\n'
  data_dir = write_raw(tmp_path / 'raw', u_data=bad)
  message = _expect_bad_input(tmp_path, data_dir, '2 raw line(s)',
                              "movie '99' is not in u.item",
                              "user '7' is not in u.user")
  assert 'u.data:15' in message and 'u.data:16' in message


@pytest.mark.parametrize('missing', ['u.item', 'u.user'])
def test_missing_file(tmp_path, missing):
  data_dir = write_raw(tmp_path / 'raw')
  os.remove(os.path.join(data_dir, missing))
  _expect_bad_input(tmp_path, data_dir, f'{missing}: missing')


def test_missing_folder_names_the_expected_files(tmp_path):
  _expect_bad_input(tmp_path, str(tmp_path / 'nowhere'),
                    'no MovieLens ratings file', 'u.data, u.item, u.user')


@pytest.mark.parametrize('empty', ['u.data', 'u.item', 'u.user'])
def test_empty_file(tmp_path, empty):
  data_dir = write_raw(tmp_path / 'raw')
  open(os.path.join(data_dir, empty), 'w').close()
  _expect_bad_input(tmp_path, data_dir, f'{empty}: empty file')


def test_u_item_in_utf8_is_a_wrong_encoding(tmp_path):
  data_dir = write_raw(tmp_path / 'raw')
  with open(os.path.join(data_dir, 'u.item'), 'w', encoding='utf-8') as f:
    f.write(U_ITEM)
  message = _expect_bad_input(tmp_path, data_dir, 'u.item:2', 'UTF-8',
                              'latin-1', '4 raw line(s)')
  # Movie 2 did not parse, so its three ratings are refused too: counted
  # and traced to that line, not listed one by one.
  assert "root cause of 3 refused rating(s) of movie '2'" in message
  assert 'u.data:' not in message


def test_gzip_outputs_are_tfx_examples(tmp_path):
  ratings, _ = run_executor(tmp_path, write_raw(tmp_path / 'raw'))
  files = glob.glob(os.path.join(ratings.uri, 'Split-train', '*'))
  assert files and all(f.endswith('.gz') for f in files)
  with gzip.open(files[0], 'rb') as f:
    assert f.read(1)  # real gzip


def test_duplicate_movie_id_names_both_lines(tmp_path):
  twice = U_ITEM + f'2|Other Title (1990)|01-Jan-1990|||{_flags("Drama")}\n'
  data_dir = write_raw(tmp_path / 'raw', u_item=twice)
  message = _expect_bad_input(
      tmp_path, data_dir, '1 raw line(s)',
      "u.item:6: field 'movie_id': movie '2' is already defined at "
      'u.item:2; expected each movie once')
  assert "line: '2|Other Title (1990)" in message


def test_duplicate_user_id_names_both_lines(tmp_path):
  twice = U_USER + '1|30|F|writer|12345\n'
  data_dir = write_raw(tmp_path / 'raw', u_user=twice)
  _expect_bad_input(tmp_path, data_dir, '1 raw line(s)',
                    "u.user:4: field 'user_id': user '1' is already defined "
                    'at u.user:1; expected each user once')


def test_a_movie_rated_again_keeps_the_newest_rating(tmp_path, capsys):
  # User 1 rates movie 1 again at t=600, after everything else: that
  # rating replaces the one at t=100 and becomes user 1's eval rating.
  data_dir = write_raw(tmp_path / 'raw', u_data=U_DATA + '1\t1\t3\t600\n')
  ratings, _ = run_executor(tmp_path, data_dir)
  train, eval_ = read_examples(ratings, 'train'), read_examples(ratings, 'eval')
  assert len(train) + len(eval_) == 14
  rows = sorted((value(e, 'user_id')[0], value(e, 'movie_id')[0],
                 value(e, 'rating')[0], value(e, 'timestamp')[0])
                for e in train + eval_ if value(e, 'user_id') == ['1'])
  assert rows[0] == ('1', '1', 3.0, 600)
  assert ('1', '1', 600) in [(value(e, 'user_id')[0], value(e, 'movie_id')[0],
                              value(e, 'timestamp')[0]) for e in eval_]
  assert ('MovieLensExampleGen: 1 rating(s) of a movie the same user rated '
          "again dropped; each pair's newest rating kept") in (
              capsys.readouterr().out)


def test_a_bad_users_line_is_the_root_cause_of_its_ratings(tmp_path):
  bad = U_USER.replace('2|53|F|other|94043', '2|fifty|F|other|94043')
  data_dir = write_raw(tmp_path / 'raw', u_user=bad)
  message = _expect_bad_input(tmp_path, data_dir, '6 raw line(s)',
                              "u.user:2: field 'age'")
  assert "root cause of 5 refused rating(s) of user '2'" in message
  assert 'u.data:' not in message


def test_bad_lines_are_the_first_in_file_order_and_all_counted(tmp_path):
  # 25 bad ratings after the good ones, plus one bad u.item line: the
  # u.item line comes first, then the first 19 bad ratings by line number.
  extra = ''.join(f'1\t1\tbad{i}\t1000\n' for i in range(25))
  bad_item = U_ITEM.replace('08-Mar-1981', '31-Feb-1981')
  data_dir = write_raw(tmp_path / 'raw', u_data=U_DATA + extra,
                       u_item=bad_item)
  message = _expect_bad_input(tmp_path, data_dir, '29 raw line(s)',
                              'the first 20 in file order shown')
  shown = [line.split(': ', 1)[0].rsplit('/', 1)[-1]
           for line in message.splitlines()[1:] if not line.startswith('      ')]
  assert shown == ['u.item:4'] + [f'u.data:{15 + i}' for i in range(19)]
  assert "root cause of 3 refused rating(s) of movie '4'" in message


@pytest.mark.parametrize('value_, field', [
    ('99999999999999999999', 'timestamp'),
    ('-5', 'timestamp'),
    ('4102444800', 'timestamp'),  # 2100-01-01: in the future.
])
def test_timestamps_out_of_range_are_bad_lines(tmp_path, value_, field):
  bad = U_DATA.replace('3\t2\t4\t60\n', f'3\t2\t4\t{value_}\n')
  data_dir = write_raw(tmp_path / 'raw', u_data=bad)
  _expect_bad_input(tmp_path, data_dir, 'u.data:12', f"field '{field}'",
                    'seconds since the epoch, from 0 to')


def test_a_release_year_after_next_year_is_a_bad_line(tmp_path):
  bad = U_ITEM.replace('08-Mar-1981', '08-Mar-2999')
  data_dir = write_raw(tmp_path / 'raw', u_item=bad)
  _expect_bad_input(tmp_path, data_dir, "u.item:4: field 'release_date'",
                    'a release year up to')


def test_a_folder_name_with_glob_characters_is_read_as_it_is(tmp_path):
  data_dir = write_raw(tmp_path / 'ml-100k [copy]')
  ratings, _ = run_executor(tmp_path, data_dir)
  assert len(read_examples(ratings, 'train')) == 12
  fingerprint = driver.input_fingerprint(data_dir)
  assert 'num_files:1' in fingerprint and 'num_files:0' not in fingerprint


def test_a_raw_file_that_is_a_folder_is_named(tmp_path):
  data_dir = write_raw(tmp_path / 'raw')
  os.remove(os.path.join(data_dir, 'u.user'))
  os.makedirs(os.path.join(data_dir, 'u.user'))
  _expect_bad_input(tmp_path, data_dir,
                    'u.user: is a folder; expected the u.user file of ml-100k')


def test_an_unreadable_raw_file_is_named(tmp_path, monkeypatch):
  data_dir = write_raw(tmp_path / 'raw')
  opened = executor.fileio.open

  def refuse(path, mode='r'):
    if path.endswith('u.item'):
      raise PermissionError(13, 'Permission denied', path)
    return opened(path, mode)

  # Tests run as root here, where chmod does not stop a read.
  monkeypatch.setattr(executor.fileio, 'open', refuse)
  _expect_bad_input(tmp_path, data_dir, 'u.item: cannot be read (Permission '
                    'denied); check its permissions')


# --- Other layouts: ml-1m and the CSV layout of ml-20m/ml-25m -----------------

# The same ratings as U_DATA (so the same split), in each layout.
ML1M_RATINGS = U_DATA.replace('\t', '::')
ML1M_MOVIES = ('1::Toy Story (1995)::Animation|Comedy\n'
               '2::Mis\xe9rables, Les (1995)::Drama\n'
               "3::Untitled::Children's\n"
               '4::Heavy Metal (1981)::Action|Horror\n'
               '5::Heat (1995)::Action|Crime\n')
# Age group codes and occupation codes (17: technician/engineer, 0: other).
ML1M_USERS = ('1::M::25::17::85711\n'
              '2::F::50::0::94043-1234\n'
              '3::M::18::20::32067\n')
ML25M_RATINGS = 'userId,movieId,rating,timestamp\n' + ''.join(
    f'{u},{m},{r},{t}\n' for u, m, r, t in
    (line.split('\t') for line in U_DATA.splitlines())).replace(
        '1,4,1,500', '1,4,0.5,500').replace('2,3,2,900', '2,3,4.5,900')
ML25M_MOVIES = ('movieId,title,genres\n'
                '1,Toy Story (1995),Animation|Children|Comedy\n'
                '2,"Misérables, Les (1995)",Drama\n'
                '3,Untitled,(no genres listed)\n'
                '4,Heavy Metal (1981),Action|Horror|IMAX\n'
                '5,Heat (1995),Action|Crime\n')
DEMOGRAPHICS = {'age', 'gender', 'occupation', 'zip_code'}


def write_files(folder, files):
  os.makedirs(folder, exist_ok=True)
  for name, (text, encoding) in files.items():
    with open(os.path.join(folder, name), 'w', encoding=encoding,
              newline='') as f:
      f.write(text)
  return str(folder)


def write_ml1m(folder, ratings=ML1M_RATINGS):
  return write_files(folder, {'ratings.dat': (ratings, 'ascii'),
                              'movies.dat': (ML1M_MOVIES, 'latin-1'),
                              'users.dat': (ML1M_USERS, 'latin-1')})


def write_ml25m(folder, ratings=ML25M_RATINGS, movies=ML25M_MOVIES):
  return write_files(folder, {'ratings.csv': (ratings, 'utf-8'),
                              'movies.csv': (movies, 'utf-8')})


@pytest.fixture(scope='module')
def ml1m_run(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp('ml1m')
  return run_executor(tmp_path, write_ml1m(tmp_path / 'raw'))


@pytest.fixture(scope='module')
def ml25m_run(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp('ml25m')
  return run_executor(tmp_path, write_ml25m(tmp_path / 'raw'))


def test_ml1m_examples_carry_mapped_demographics(ml1m_run):
  ratings, movies = ml1m_run
  train, eval_ = read_examples(ratings, 'train'), read_examples(ratings, 'eval')
  assert len(train) == 12 and len(eval_) == 2
  held_out = sorted((value(e, 'user_id')[0], value(e, 'movie_id')[0])
                    for e in eval_)
  assert held_out == [('1', '4'), ('2', '3')]  # As for the same ml-100k data.
  example = next(e for e in eval_ if value(e, 'user_id') == ['2'])
  assert value(example, 'age') == [50]  # The age group code.
  assert value(example, 'gender') == ['F']
  assert value(example, 'occupation') == ['other']  # Code 0.
  assert value(example, 'zip_code') == ['94043-1234']
  assert value(example, 'title') == ['Untitled']
  assert 'release_year' not in example.features.feature  # No '(YYYY)'.
  catalog = {value(e, 'movie_id')[0]: e for e in read_examples(movies,
                                                                'catalog')}
  assert value(catalog['2'], 'title') == ['Misérables, Les (1995)']
  assert value(catalog['2'], 'release_year') == [1995]
  assert 'release_year' not in catalog['3'].features.feature
  assert value(catalog['3'], 'genres') == ["Children's"]


def test_ml25m_examples_have_no_demographic_features(ml25m_run):
  ratings, _ = ml25m_run
  train, eval_ = read_examples(ratings, 'train'), read_examples(ratings, 'eval')
  assert len(train) == 12 and len(eval_) == 2
  for example in train + eval_:
    assert not DEMOGRAPHICS & set(example.features.feature)
  by_user = {value(e, 'user_id')[0]: e for e in eval_}
  assert sorted(by_user) == ['1', '2']
  # Half stars come through as they are.
  assert value(by_user['1'], 'rating') == [0.5]
  assert value(by_user['2'], 'rating') == [4.5]
  assert set(by_user['1'].features.feature) == {
      'user_id', 'movie_id', 'rating', 'timestamp', 'title', 'release_year',
      'genres'}
  assert value(by_user['1'], 'genres') == ['Action', 'Horror', 'IMAX']


def test_ml25m_catalogue_quoted_titles_and_missing_features(ml25m_run):
  _, movies = ml25m_run
  catalog = {value(e, 'movie_id')[0]: e for e in read_examples(movies,
                                                                'catalog')}
  assert sorted(catalog) == ['1', '2', '3', '4', '5']
  assert value(catalog['2'], 'title') == ['Misérables, Les (1995)']
  # '(no genres listed)' and a title without '(YYYY)': absent, not faked.
  assert set(catalog['3'].features.feature) == {'movie_id', 'title'}


@pytest.mark.parametrize('run, layout_name', [('ml1m_run', 'ml-1m'),
                                              ('ml25m_run', 'ml-25m')])
def test_examples_pass_their_layouts_schema(run, layout_name, request):
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  ratings, _ = request.getfixturevalue(run)
  # run_executor writes into <tmp>/out/ratings; the raw files are in <tmp>/raw.
  data_dir = os.path.join(os.path.dirname(os.path.dirname(ratings.uri)),
                          'raw')
  schema_path = configs.schema_path(data_dir)
  assert os.path.basename(schema_path) == f'schema.{layout_name}.pbtxt'
  stats = tfdv.generate_statistics_from_tfrecord(
      os.path.join(ratings.uri, 'Split-train', '*.gz'))
  anomalies = tfdv.validate_statistics(stats,
                                       tfdv.load_schema_text(schema_path))
  assert dict(anomalies.anomaly_info) == {}
  # ml-100k's schema would stop the run: it expects ml-100k's occupations
  # (ml-1m) or demographics in every example (ml-25m).
  against_ml100k = tfdv.validate_statistics(
      stats, tfdv.load_schema_text(configs.SCHEMA_PATH))
  expected = {'ml-1m': {'occupation'}, 'ml-25m': DEMOGRAPHICS}
  assert expected[layout_name] <= set(against_ml100k.anomaly_info)


def test_ml25m_bad_lines_are_named_by_file_line_and_field(tmp_path):
  bad = (ML25M_RATINGS.replace('1,3,4,300\n', '1,3,5.5,300\n') +
         '3,99,4.0,999\n')
  data_dir = write_ml25m(tmp_path / 'raw', ratings=bad)
  message = _expect_bad_input(tmp_path, data_dir, '2 raw line(s)')
  # Line numbers count the header: the third rating is line 4.
  assert ("ratings.csv:4: field 'rating': expected a number from 0.5 to 5 "
          "in steps of 0.5, got '5.5'") in message
  assert ("ratings.csv:16: field 'movie_id': movie '99' is not in "
          "movies.csv") in message
  assert "line: '3,99,4.0,999'" in message


def test_ml25m_missing_header_fails_before_any_beam_work(tmp_path):
  headless = ML25M_MOVIES.split('\n', 1)[1]
  data_dir = write_ml25m(tmp_path / 'raw', movies=headless)
  _expect_bad_input(tmp_path, data_dir,
                    "movies.csv:1: expected the header 'movieId,title,genres'",
                    "got '1,Toy Story (1995),Animation|Children|Comedy'")


def test_ml1m_needs_users_dat(tmp_path):
  data_dir = write_ml1m(tmp_path / 'raw')
  os.remove(os.path.join(data_dir, 'users.dat'))
  _expect_bad_input(tmp_path, data_dir, 'users.dat: missing (the ml-1m '
                    'layout needs ratings.dat, movies.dat, users.dat)')


def test_encoder_joins_features_keeps_order_and_leaves_missing_ones_out():
  # One batch mixing movies with and without genres and release year: rows
  # are encoded in groups of equal feature presence, and come back in order.
  movies = {
      '1': raw.Movie('1', 'Toy Story (1995)', 1995, ('Animation', 'Comedy')),
      '2': raw.Movie('2', 'No Year', None, ('Drama',)),
      '3': raw.Movie('3', 'Misérables, Les (1995)', 1995, ()),
      '4': raw.Movie('4', 'Nothing', None, ()),
  }
  users = {'7': raw.User('7', 24, 'M', 'technician', '85711')}
  rows = [('7', '3', 4.5, 30), ('7', '1', 5.0, 10), ('7', '4', 1.0, 40),
          ('7', '2', 2.5, 20), ('7', '1', 3.0, 50)]
  encoder = ingest._EncodeExamples(with_users=True)  # pylint: disable=protected-access
  encoder.setup()
  examples = [tf.train.Example.FromString(e)
              for e in encoder.process(rows, movies, users)]
  assert [(value(e, 'movie_id')[0], value(e, 'timestamp')[0])
          for e in examples] == [('3', 30), ('1', 10), ('4', 40), ('2', 20),
                                 ('1', 50)]
  common = {'user_id', 'movie_id', 'rating', 'timestamp', 'title', 'age',
            'gender', 'occupation', 'zip_code'}
  assert [set(e.features.feature) - common for e in examples] == [
      {'release_year'}, {'release_year', 'genres'}, set(), {'genres'},
      {'release_year', 'genres'}]
  first, second = examples[0], examples[1]
  assert value(first, 'title') == ['Misérables, Les (1995)']
  assert value(first, 'rating') == [4.5]
  assert value(second, 'genres') == ['Animation', 'Comedy']
  assert value(second, 'release_year') == [1995]
  assert (value(second, 'age'), value(second, 'gender'),
          value(second, 'occupation'), value(second, 'zip_code')) == (
              [24], ['M'], ['technician'], ['85711'])
  # Releases without demographics: no user features at all.
  encoder = ingest._EncodeExamples(with_users=False)  # pylint: disable=protected-access
  encoder.setup()
  bare = tf.train.Example.FromString(
      next(iter(encoder.process(rows[:1], movies, {}))))
  assert set(bare.features.feature) == {'user_id', 'movie_id', 'rating',
                                        'timestamp', 'title', 'release_year'}
