"""Tests for movielens.download, with fake transports: no network."""

import hashlib
import io
import os
import socket
import subprocess
import urllib.error
import zipfile

import pytest

from movielens import download
from movielens import layout

pytestmark = pytest.mark.unit

# --- Fakes -------------------------------------------------------------------

# A tiny GroupLens zip: the three files plus a README, and two entries that
# must not be extracted (outside ml-100k/, and in a subfolder).
_GL_DATA = b'196\t242\t3\t881250949\n186\t302\t3\t891717742\n'
_GL_ITEM = (b'242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?'
            b'Kolya%20(1996)|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n')
_GL_USER = b'186|39|F|executive|00000\n196|49|M|writer|55105\n'


def _zip(members):
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, 'w') as archive:
    for name, content in members.items():
      archive.writestr(name, content)
  return buffer.getvalue()


_GROUPLENS_ZIP = _zip({
    'ml-100k/u.data': _GL_DATA,
    'ml-100k/u.item': _GL_ITEM,
    'ml-100k/u.user': _GL_USER,
    'ml-100k/README': b'SUMMARY & USAGE LICENSE\n',
    'elsewhere/u.data': b'not this one\n',
    'ml-100k/sub/u.data': b'nor this one\n',
})
_GROUPLENS_MD5 = hashlib.md5(_GROUPLENS_ZIP).hexdigest()

# A tiny RecBole-like wheel. Quirks of the real file: item 267 is 'unkonwn'
# (sic) in title and year, item 1412 has the year 'V', titles are UTF-8.
_RB = 'recbole/dataset_example/ml-100k/ml-100k'
_RB_INTER = ('user_id:token\titem_id:token\trating:float\ttimestamp:float\n'
             '196\t242\t3\t881250949\n'
             '186\t302\t3\t891717742\n'
             '22\t267\t1\t878887116\n'
             '196\t543\t5\t881251000\n'
             '22\t1412\t2\t878887200\n')
_RB_ITEM = ('item_id:token\tmovie_title:token_seq\trelease_year:token\t'
            'class:token_seq\n'
            '242\tKolya\t1996\tComedy\n'
            '267\tunkonwn\tunkonwn\tunknown\n'
            '302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n'
            '543\tMisérables, Les\t1995\tDrama Musical\n'
            "1412\tLand Before Time III: The Time of the Great Giving (1995)\t"
            "V\tAnimation Children's\n")
_RB_USER = ('user_id:token\tage:token\tgender:token\toccupation:token\t'
            'zip_code:token\n'
            '22\t25\tM\twriter\t40206\n'
            '186\t39\tF\texecutive\t00000\n'
            '196\t49\tM\twriter\t55105\n')
_WHEEL = _zip({
    f'{_RB}.inter': _RB_INTER.encode('utf-8'),
    f'{_RB}.item': _RB_ITEM.encode('utf-8'),
    f'{_RB}.user': _RB_USER.encode('utf-8'),
    'recbole/__init__.py': b'',
})
_WHEEL_SHA256 = hashlib.sha256(_WHEEL).hexdigest()
_TINY_COUNTS = download.Counts(ratings=5, users=3, movies=5)

# What the fallback must write for the wheel above.
_EXPECTED_U_DATA = (b'196\t242\t3\t881250949\n'
                    b'186\t302\t3\t891717742\n'
                    b'22\t267\t1\t878887116\n'
                    b'196\t543\t5\t881251000\n'
                    b'22\t1412\t2\t878887200\n')
_EXPECTED_U_ITEM = (
    '242|Kolya (1996)|01-Jan-1996|||0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n'
    '267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n'
    '302|L.A. Confidential (1997)|01-Jan-1997|||'
    '0|0|0|0|0|0|1|0|0|0|1|0|0|1|0|0|1|0|0\n'
    '543|Misérables, Les (1995)|01-Jan-1995|||'
    '0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0\n'
    '1412|Land Before Time III: The Time of the Great Giving (1995)||||'
    '0|0|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n').encode('latin-1')
_EXPECTED_U_USER = (b'22|25|M|writer|40206\n'
                    b'186|39|F|executive|00000\n'
                    b'196|49|M|writer|55105\n')


def _serve(payload):
  calls = []

  def fetch(url):
    calls.append(url)
    return payload

  fetch.calls = calls
  return fetch


def _unreachable(url):
  raise urllib.error.URLError(
      socket.gaierror(-2, 'Name or service not known'))


def _wheel_server(payload=_WHEEL):
  calls = []

  def download_wheel(dest_dir):
    calls.append(dest_dir)
    path = os.path.join(dest_dir, 'recbole-1.2.1-py3-none-any.whl')
    with open(path, 'wb') as f:
      f.write(payload)
    return path

  download_wheel.calls = calls
  return download_wheel


def _no_wheel(dest_dir):
  raise AssertionError('the RecBole fallback must not be used')


def _no_network(url):
  raise AssertionError(f'unexpected download of {url}')


def _fallback(dest, **overrides):
  """fetch_ml100k with GroupLens unreachable and the tiny fake wheel."""
  arguments = dict(
      fetch_url=_unreachable,
      download_wheel=_wheel_server(),
      recbole_sha256=_WHEEL_SHA256,
      expected_counts=_TINY_COUNTS)
  arguments.update(overrides)
  return download.fetch_ml100k(dest, **arguments)


def _assert_left_nothing(parent, dest):
  assert not os.path.exists(dest)
  if os.path.isdir(parent):
    assert [n for n in os.listdir(parent) if 'partial' in n] == []


def _read_source(dest):
  with open(os.path.join(dest, download.SOURCE_FILE)) as f:
    return dict(line.split(': ', 1) for line in f.read().splitlines())


# --- GroupLens ---------------------------------------------------------------


def test_grouplens_success_extracts_the_ml100k_folder(tmp_path):
  dest = str(tmp_path / 'data' / 'ml-100k')
  fetch = _serve(_GROUPLENS_ZIP)
  result = download.fetch_ml100k(
      dest, fetch_url=fetch, download_wheel=_no_wheel,
      grouplens_md5=_GROUPLENS_MD5)

  assert fetch.calls == [download.GROUPLENS_URL]
  assert result.source == 'grouplens'
  assert result.downloaded
  assert result.checksum == f'md5:{_GROUPLENS_MD5}'
  assert sorted(os.listdir(dest)) == ['README', 'SOURCE', 'u.data', 'u.item',
                                      'u.user']
  assert (tmp_path / 'data' / 'ml-100k' / 'u.data').read_bytes() == _GL_DATA
  assert (tmp_path / 'data' / 'ml-100k' / 'u.item').read_bytes() == _GL_ITEM
  assert (tmp_path / 'data' / 'ml-100k' / 'u.user').read_bytes() == _GL_USER
  source = _read_source(dest)
  assert source['source'] == 'grouplens'
  assert source['url'] == download.GROUPLENS_URL
  assert source['checksum'] == f'md5:{_GROUPLENS_MD5}'
  assert source['date'].endswith('Z')
  assert os.listdir(tmp_path / 'data') == ['ml-100k']  # No staging left.


def test_grouplens_checksum_mismatch_raises_and_writes_nothing(tmp_path):
  dest = str(tmp_path / 'ml-100k')
  with pytest.raises(download.ChecksumError) as error:
    download.fetch_ml100k(
        dest, fetch_url=_serve(_GROUPLENS_ZIP), download_wheel=_no_wheel)
  message = str(error.value)
  assert download.GROUPLENS_URL in message
  assert download.GROUPLENS_MD5 in message  # Expected.
  assert _GROUPLENS_MD5 in message  # Actual.
  _assert_left_nothing(str(tmp_path), dest)


def test_default_md5_is_grouplens_published_one():
  assert download.GROUPLENS_MD5 == '0e33842e24a9c977be4e0107933c0723'


def test_grouplens_zip_without_u_user_is_an_error(tmp_path):
  payload = _zip({'ml-100k/u.data': _GL_DATA, 'ml-100k/u.item': _GL_ITEM})
  dest = str(tmp_path / 'ml-100k')
  with pytest.raises(download.DownloadError, match='lacks ml-100k/u.user'):
    download.fetch_ml100k(
        dest, fetch_url=_serve(payload), download_wheel=_no_wheel,
        grouplens_md5=hashlib.md5(payload).hexdigest())
  _assert_left_nothing(str(tmp_path), dest)


def test_source_grouplens_unreachable_suggests_recbole(tmp_path):
  dest = str(tmp_path / 'ml-100k')
  with pytest.raises(download.SourceUnreachableError) as error:
    download.fetch_ml100k(
        dest, source='grouplens', fetch_url=_unreachable,
        download_wheel=_no_wheel)
  message = str(error.value)
  assert 'GroupLens is unreachable' in message
  assert 'Name or service not known' in message
  assert '--source recbole' in message
  _assert_left_nothing(str(tmp_path), dest)


def test_http_error_counts_as_unreachable(tmp_path):

  def fetch(url):
    raise urllib.error.HTTPError(url, 503, 'Service Unavailable', {}, None)

  with pytest.raises(download.SourceUnreachableError,
                     match='HTTP 503 Service Unavailable'):
    download.fetch_ml100k(
        str(tmp_path / 'ml-100k'), source='grouplens', fetch_url=fetch,
        download_wheel=_no_wheel)


# --- RecBole fallback --------------------------------------------------------


def test_unreachable_grouplens_falls_back_to_recbole(tmp_path):
  dest = str(tmp_path / 'ml-100k')
  messages = []
  wheel = _wheel_server()
  result = _fallback(dest, download_wheel=wheel, log=messages.append)

  assert result.source == 'recbole'
  assert len(wheel.calls) == 1
  assert sorted(os.listdir(dest)) == ['SOURCE', 'u.data', 'u.item', 'u.user']
  assert (tmp_path / 'ml-100k' / 'u.data').read_bytes() == _EXPECTED_U_DATA
  assert (tmp_path / 'ml-100k' / 'u.item').read_bytes() == _EXPECTED_U_ITEM
  assert (tmp_path / 'ml-100k' / 'u.user').read_bytes() == _EXPECTED_U_USER
  # u.item is latin-1, as GroupLens ships it: 'é' is one byte, 0xE9.
  assert b'Mis\xe9rables, Les (1995)' in (tmp_path / 'ml-100k' /
                                           'u.item').read_bytes()

  source = _read_source(dest)
  assert source['source'] == 'recbole'
  assert source['url'] == download.RECBOLE_URL
  assert source['checksum'] == f'sha256:{_WHEEL_SHA256}'
  assert 'IMDb' in source['note']
  assert any('GroupLens is unreachable (gaierror: Name or service not known)'
             in m for m in messages)
  assert result.notes[-1] == download.RECBOLE_CAVEAT


def test_fallback_output_parses_with_layout_parsers(tmp_path):
  dest = tmp_path / 'ml-100k'
  _fallback(str(dest))
  movies = [
      layout.parse_ml100k_movie(line)
      for line in (dest / 'u.item').read_bytes().splitlines(keepends=True)
  ]
  assert movies[1] == layout.Movie(
      movie_id='267', title='unknown', release_year=None, genres=('unknown',))
  assert movies[3].title == 'Misérables, Les (1995)'
  # 1412's year 'V' is dropped; the year in its title still parses.
  assert movies[4].release_year == 1995
  ratings = [
      layout.parse_ml100k_rating(line)
      for line in (dest / 'u.data').read_bytes().splitlines(keepends=True)
  ]
  assert ratings[0] == layout.Rating('196', '242', 3.0, 881250949)


def test_source_recbole_skips_grouplens(tmp_path):
  result = _fallback(str(tmp_path / 'ml-100k'), source='recbole',
                     fetch_url=_no_network)
  assert result.source == 'recbole'
  # Not reached: no note about GroupLens, only the caveat.
  assert result.notes == (download.RECBOLE_CAVEAT,)


def test_wheel_checksum_mismatch_raises_and_writes_nothing(tmp_path):
  dest = str(tmp_path / 'ml-100k')
  with pytest.raises(download.ChecksumError) as error:
    _fallback(dest, recbole_sha256=download.RECBOLE_WHEEL_SHA256)
  message = str(error.value)
  assert download.RECBOLE_URL in message
  assert 'recbole-1.2.1-py3-none-any.whl' in message
  assert download.RECBOLE_WHEEL_SHA256 in message  # Expected.
  assert _WHEEL_SHA256 in message  # Actual.
  _assert_left_nothing(str(tmp_path), dest)


def test_rebuild_sizes_are_checked(tmp_path):
  # The default expectation is the real ml-100k; the tiny fake fails it.
  dest = str(tmp_path / 'ml-100k')
  with pytest.raises(download.DownloadError) as error:
    _fallback(dest, expected_counts=download.ML100K_COUNTS)
  assert ('expected Counts(ratings=100000, users=943, movies=1682), found '
          'Counts(ratings=5, users=3, movies=5)') in str(error.value)
  _assert_left_nothing(str(tmp_path), dest)


def test_rebuild_rejects_ratings_of_unknown_movies():
  inter = [dict(user_id='1', item_id='99', rating='4', timestamp='1')]
  item = [{'item_id': '1', 'movie_title': 'X', 'release_year': '1995',
           'class': 'Drama'}]
  user = [dict(user_id='1', age='30', gender='F', occupation='other',
               zip_code='12345')]
  with pytest.raises(download.DownloadError,
                     match=r"ratings of unknown movies \['99'\]"):
    download.rebuild_from_recbole(inter, item, user, expected_counts=None)


def test_rebuild_rejects_invalid_values():
  inter = [dict(user_id='1', item_id='1', rating='7', timestamp='1')]
  item = [{'item_id': '1', 'movie_title': 'X', 'release_year': '1995',
           'class': 'Drama'}]
  user = [dict(user_id='1', age='30', gender='F', occupation='other',
               zip_code='12345')]
  with pytest.raises(download.DownloadError, match="field 'rating'"):
    download.rebuild_from_recbole(inter, item, user, expected_counts=None)


def test_wheel_download_failure_is_reported(tmp_path):

  def broken_pip(dest_dir):
    raise download.SourceUnreachableError(
        '`pip download recbole==1.2.1` failed: ERROR: No matching '
        'distribution found for recbole==1.2.1')

  with pytest.raises(download.SourceUnreachableError,
                     match='No matching distribution'):
    _fallback(str(tmp_path / 'ml-100k'), download_wheel=broken_pip)


def test_download_wheel_turns_pip_failure_into_one_line(tmp_path, monkeypatch):

  def failing_run(command, **kwargs):
    assert command[1:4] == ['-m', 'pip', 'download']
    assert 'recbole==1.2.1' in command and '--no-deps' in command
    raise subprocess.CalledProcessError(
        1, command, output='',
        stderr='WARNING: Retrying...\nERROR: Could not find a version\n')

  monkeypatch.setattr(download.subprocess, 'run', failing_run)
  with pytest.raises(download.SourceUnreachableError) as error:
    download.download_wheel(str(tmp_path))
  assert str(error.value) == (
      '`pip download recbole==1.2.1` failed: ERROR: Could not find a version')


# --- Idempotence and the destination -----------------------------------------


def test_second_call_does_nothing(tmp_path):
  dest = str(tmp_path / 'ml-100k')
  _fallback(dest)
  before = {n: (tmp_path / 'ml-100k' / n).read_bytes()
            for n in os.listdir(dest)}

  result = download.fetch_ml100k(dest, fetch_url=_no_network,
                                 download_wheel=_no_wheel)

  assert result == download.FetchResult(dest=dest, source=None)
  assert not result.downloaded
  after = {n: (tmp_path / 'ml-100k' / n).read_bytes()
           for n in os.listdir(dest)}
  assert after == before


def test_empty_dest_folder_is_filled(tmp_path):
  (tmp_path / 'ml-100k').mkdir()
  _fallback(str(tmp_path / 'ml-100k'))
  assert (tmp_path / 'ml-100k' / 'u.user').read_bytes() == _EXPECTED_U_USER


def test_incomplete_dest_is_not_overwritten(tmp_path):
  (tmp_path / 'ml-100k').mkdir()
  (tmp_path / 'ml-100k' / 'u.data').write_bytes(b'mine\n')
  with pytest.raises(download.DownloadError,
                     match='exists but lacks u.item, u.user'):
    _fallback(str(tmp_path / 'ml-100k'))
  assert (tmp_path / 'ml-100k' / 'u.data').read_bytes() == b'mine\n'


def test_unknown_source_is_a_value_error(tmp_path):
  with pytest.raises(ValueError, match='source must be one of'):
    download.fetch_ml100k(str(tmp_path), source='kaggle')


# --- Command line ------------------------------------------------------------


def test_cli_grouplens_unreachable_is_one_line_error(tmp_path, monkeypatch,
                                                     capsys):
  monkeypatch.setattr(download, 'fetch_url', _unreachable)
  dest = str(tmp_path / 'ml-100k')
  code = download.main(['--dest', dest, '--source', 'grouplens'])
  err = capsys.readouterr().err
  assert code == 1
  assert err.startswith('error: GroupLens is unreachable')
  assert '--source recbole' in err
  assert 'Traceback' not in err
  assert err.count('\n') == 1
  assert not os.path.exists(dest)


def test_cli_wheel_checksum_mismatch_is_one_line_error(tmp_path, monkeypatch,
                                                       capsys):
  # The fake wheel cannot match the pinned SHA-256 of the real one.
  monkeypatch.setattr(download, 'fetch_url', _unreachable)
  monkeypatch.setattr(download, 'download_wheel', _wheel_server())
  code = download.main(['--dest', str(tmp_path / 'ml-100k')])
  out, err = capsys.readouterr()
  assert code == 1
  assert 'GroupLens is unreachable' in out  # Progress, then the error.
  assert err.startswith('error: checksum mismatch for')
  assert err.count('\n') == 1


def test_cli_existing_dest_prints_one_line(tmp_path, capsys):
  _fallback(str(tmp_path / 'ml-100k'))
  code = download.main(['--dest', str(tmp_path / 'ml-100k')])
  out = capsys.readouterr().out
  assert code == 0
  assert out == (f'{tmp_path / "ml-100k"} already holds u.data, u.item, '
                 'u.user; nothing to do.\n')


def test_cli_help_lists_sources(capsys):
  with pytest.raises(SystemExit) as exit_:
    download.main(['--help'])
  assert exit_.value.code == 0
  out = capsys.readouterr().out
  assert '--source {auto,grouplens,recbole}' in out
  assert '--dest' in out


# --- Other releases (ml-1m, ml-20m, ml-25m): GroupLens only ------------------

_ML25M_RATINGS = b'userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n'
_ML25M_MOVIES = (b'movieId,title,genres\n'
                 b'296,"Pulp Fiction, The (1994)",Comedy|Crime|Drama\n')
_ML25M_ZIP = _zip({
    'ml-25m/ratings.csv': _ML25M_RATINGS,
    'ml-25m/movies.csv': _ML25M_MOVIES,
    'ml-25m/README.txt': b'Summary\n',
    'ml-25m/genome-scores.csv': b'movieId,tagId,relevance\n',  # Not needed.
    'ml-25m/sub/ratings.csv': b'nor this one\n',
    'elsewhere/movies.csv': b'not this one\n',
})
_ML1M_ZIP = _zip({
    'ml-1m/ratings.dat': b'1::1193::5::978300760\n',
    'ml-1m/movies.dat': b"1193::Cuckoo's Nest (1975)::Drama\n",
    'ml-1m/users.dat': b'1::F::1::10::48067\n',
    'ml-1m/README': b'SUMMARY\n',
})


def _release(name, payload, **checksums):
  """A Release of the real name whose checksums fit the fake zip."""
  real = download.RELEASES[name]
  values = dict(md5=hashlib.md5(payload).hexdigest(),
                sha256=hashlib.sha256(payload).hexdigest())
  values.update(checksums)
  return download.Release(real.name, real.url, **values)


def _file_server(payload):
  calls = []

  def download_file(url, path, log):
    calls.append(url)
    with open(path, 'wb') as f:
      f.write(payload)

  download_file.calls = calls
  return download_file


def _unreachable_file(url, path, log):
  raise urllib.error.URLError(
      socket.gaierror(-2, 'Name or service not known'))


def test_release_checksums_are_the_pinned_public_values():
  # MD5s as GroupLens publishes them (<zip>.md5); SHA-256s as independent
  # projects pinning the same zips record them.
  gl = 'https://files.grouplens.org/datasets/movielens'
  expected = {
      'ml-1m': (f'{gl}/ml-1m.zip', 'c4d9eecfca2ab87c1945afe126590906',
                'a6898adb50b9ca05aa231689da44c217'
                'cb524e7ebd39d264c56e2832f2c54e20'),
      'ml-20m': (f'{gl}/ml-20m.zip', 'cd245b17a1ae2cc31bb14903e1204af3',
                 '96f243c338a8665f6bcc89c53edf6ee3'
                 '9162a846940de6b7c8c48aeada765ff3'),
      'ml-25m': (f'{gl}/ml-25m.zip', '6b51fb2759a8657d3bfcbfc42b592ada',
                 '8b21cfb7eb1706b4ec0aac894368d90a'
                 'cf26ebdfb6aced3ebd4ad5bd1eb9c6aa'),
  }
  assert {n: (r.url, r.md5, r.sha256)
          for n, r in download.RELEASES.items()} == expected
  assert download.DATASETS == ('ml-100k', 'ml-1m', 'ml-20m', 'ml-25m')
  assert download.RELEASES['ml-20m'].layout is layout.ML_25M


def test_release_extracts_layout_files_and_readme(tmp_path):
  dest = str(tmp_path / 'data' / 'ml-25m')
  server = _file_server(_ML25M_ZIP)
  release = _release('ml-25m', _ML25M_ZIP)
  result = download.fetch_release(dest, release, download_file=server)
  assert server.calls == [release.url]
  assert result.downloaded and result.source == 'grouplens'
  assert result.checksum == f'md5:{release.md5} sha256:{release.sha256}'
  assert sorted(os.listdir(dest)) == ['README.txt', 'SOURCE', 'movies.csv',
                                      'ratings.csv']
  with open(os.path.join(dest, 'movies.csv'), 'rb') as f:
    assert f.read() == _ML25M_MOVIES
  assert _read_source(dest)['url'] == release.url
  assert layout.detect_layout(dest) is layout.ML_25M
  # No zip, no staging folder left beside dest.
  assert sorted(os.listdir(tmp_path / 'data')) == ['ml-25m']


def test_ml1m_release_extracts_users_too(tmp_path):
  dest = str(tmp_path / 'ml-1m')
  download.fetch_release(dest, _release('ml-1m', _ML1M_ZIP),
                         download_file=_file_server(_ML1M_ZIP))
  assert sorted(os.listdir(dest)) == ['README', 'SOURCE', 'movies.dat',
                                      'ratings.dat', 'users.dat']
  with open(os.path.join(dest, 'users.dat'), 'rb') as f:
    assert layout.parse_ml1m_user(f.read()).occupation == 'K-12 student'


@pytest.mark.parametrize('which', ['md5', 'sha256'])
def test_release_checksum_mismatch_writes_nothing(tmp_path, which):
  dest = str(tmp_path / 'ml-25m')
  release = _release('ml-25m', _ML25M_ZIP, **{which: '0' * 8})
  with pytest.raises(download.ChecksumError) as error:
    download.fetch_release(dest, release,
                           download_file=_file_server(_ML25M_ZIP))
  assert f'expected {which} 00000000' in str(error.value)
  assert os.listdir(tmp_path) == []


def test_release_unreachable_is_one_clear_line(tmp_path):
  dest = str(tmp_path / 'ml-25m')
  with pytest.raises(download.SourceUnreachableError) as error:
    download.fetch_release(dest, download.RELEASES['ml-25m'],
                           download_file=_unreachable_file)
  message = str(error.value)
  assert message.startswith(
      'GroupLens is unreachable (https://files.grouplens.org/datasets/'
      'movielens/ml-25m.zip: gaierror: Name or service not known); ml-25m '
      'has no other source here')
  assert 'movielens.synthetic' in message and '\n' not in message
  assert os.listdir(tmp_path) == []


def test_release_zip_without_a_layout_file(tmp_path):
  payload = _zip({'ml-25m/ratings.csv': _ML25M_RATINGS})
  with pytest.raises(download.DownloadError, match='lacks ml-25m/movies.csv'):
    download.fetch_release(str(tmp_path / 'ml-25m'),
                           _release('ml-25m', payload),
                           download_file=_file_server(payload))
  assert os.listdir(tmp_path) == []


def test_release_second_call_does_nothing(tmp_path):
  dest = str(tmp_path / 'ml-1m')
  release = _release('ml-1m', _ML1M_ZIP)
  download.fetch_release(dest, release, download_file=_file_server(_ML1M_ZIP))
  again = download.fetch_release(dest, release,
                                 download_file=_unreachable_file)
  assert not again.downloaded


def test_download_file_streams_a_url_into_a_file(tmp_path):
  source = tmp_path / 'source.zip'
  source.write_bytes(b'x' * 3_000_000)
  messages = []
  download.download_file(source.as_uri(), str(tmp_path / 'copy.zip'),
                         log=messages.append)
  assert (tmp_path / 'copy.zip').read_bytes() == source.read_bytes()
  assert messages[-1] == '  3 of 3 MB'


def test_cli_dataset_defaults_dest_to_data_dataset(tmp_path, monkeypatch,
                                                   capsys):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setitem(download.RELEASES, 'ml-25m',
                      _release('ml-25m', _ML25M_ZIP))
  monkeypatch.setattr(download, 'download_file', _file_server(_ML25M_ZIP))
  assert download.main(['--dataset', 'ml-25m']) == 0
  out = capsys.readouterr().out
  assert os.path.isfile(os.path.join('data', 'ml-25m', 'ratings.csv'))
  assert out.splitlines()[-1].startswith(
      f'Wrote ml-25m to {os.path.join("data", "ml-25m")} from grouplens ')
  assert download.main(['--dataset', 'ml-25m']) == 0
  assert capsys.readouterr().out == (
      f'{os.path.join("data", "ml-25m")} already holds ratings.csv, '
      'movies.csv; nothing to do.\n')


def test_cli_release_unreachable_is_one_line_error(tmp_path, monkeypatch,
                                                   capsys):
  monkeypatch.setattr(download, 'download_file', _unreachable_file)
  code = download.main(['--dataset', 'ml-1m', '--dest',
                        str(tmp_path / 'ml-1m')])
  err = capsys.readouterr().err
  assert code == 1
  assert err.startswith('error: GroupLens is unreachable')
  assert 'ml-1m has no other source' in err
  assert err.count('\n') == 1
  assert not os.path.exists(tmp_path / 'ml-1m')


def test_cli_recbole_source_is_for_ml100k_only(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_:
    download.main(['--dataset', 'ml-25m', '--source', 'recbole'])
  assert exit_.value.code == 2
  assert 'holds ml-100k only' in capsys.readouterr().err


def test_cli_help_lists_datasets(capsys):
  with pytest.raises(SystemExit):
    download.main(['--help'])
  assert '--dataset {ml-100k,ml-1m,ml-20m,ml-25m}' in capsys.readouterr().out
