"""Atomic outputs: a failed write leaves the previous file whole; existing outputs need --force."""

from __future__ import annotations

import hashlib

import pytest

from pixio_ros.files import (
    OutputExistsError,
    atomic_output,
    check_writable,
    file_sha256,
    write_atomically,
)


def test_failed_write_leaves_previous_file_and_no_temporaries(tmp_path):
    target = tmp_path / 'model.ts'
    target.write_bytes(b'previous')

    def fail_halfway(temp):
        temp.write_bytes(b'half')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        write_atomically(target, fail_halfway)
    assert target.read_bytes() == b'previous'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.ts']


def test_successful_write_replaces_and_keeps_suffix_for_the_writer(tmp_path):
    target = tmp_path / 'model.pt2'
    seen_suffixes = []

    def write(temp):
        seen_suffixes.append(temp.suffix)
        temp.write_bytes(b'new')

    write_atomically(target, write)
    assert target.read_bytes() == b'new'
    assert seen_suffixes == ['.pt2']


def test_existing_output_is_refused_without_force(tmp_path):
    out = tmp_path / 'results'
    out.mkdir()
    (out / 'metrics.json').write_text('{}')
    with pytest.raises(OutputExistsError, match='results exists already, not overwriting; pass'):
        check_writable(out, force=False)
    with pytest.raises(OutputExistsError, match='pass --force'):
        with atomic_output(out):
            pass
    assert (out / 'metrics.json').read_text() == '{}'


def test_directory_output_replaces_old_one_only_when_complete(tmp_path):
    out = tmp_path / 'results'
    out.mkdir()
    (out / 'old.txt').write_text('old')
    with pytest.raises(ValueError, match='interrupted'):
        with atomic_output(out, force=True) as staging:
            staging.mkdir()
            raise ValueError('interrupted')
    assert (out / 'old.txt').read_text() == 'old'
    with atomic_output(out, force=True) as staging:
        staging.mkdir()
        (staging / 'new.txt').write_text('new')
    assert sorted(p.name for p in out.iterdir()) == ['new.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['results']


def test_sha256_matches_hashlib_across_chunks(tmp_path):
    payload = bytes(range(256)) * 9000  # more than one 1 MiB chunk
    path = tmp_path / 'blob'
    path.write_bytes(payload)
    assert file_sha256(path) == hashlib.sha256(payload).hexdigest()
