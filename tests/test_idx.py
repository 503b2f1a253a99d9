"""The IDX reader: exact round trips, and a clean InvalidDataError for every malformed input."""

from __future__ import annotations

import contextlib
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistctl.data.idx import check_images, check_labels, decompress_if_gzip, parse_idx, read_idx_file, to_idx
from mnistctl.errors import InvalidDataError

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


@given(arrays(np.uint8, shapes))
def test_uint8_arrays_round_trip(array):
    np.testing.assert_array_equal(parse_idx(to_idx(array)), array)


@given(arrays(np.dtype(">i4"), shapes))
def test_big_endian_ints_round_trip(array):
    np.testing.assert_array_equal(parse_idx(to_idx(array)), array)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash(data):
    with contextlib.suppress(InvalidDataError):
        parse_idx(data)


@given(arrays(np.uint8, shapes), st.data())
def test_truncated_files_are_rejected(array, data):
    encoded = to_idx(array)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(InvalidDataError):
        parse_idx(encoded[:cut])


@given(arrays(np.uint8, shapes), st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_rejected(array, extra):
    with pytest.raises(InvalidDataError, match="longer than its header"):
        parse_idx(to_idx(array) + extra)


@given(arrays(np.uint8, shapes), st.data())
def test_wrong_dimensions_in_header_are_rejected(array, data):
    encoded = bytearray(to_idx(array))
    axis = data.draw(st.integers(0, array.ndim - 1))
    wrong = data.draw(st.integers(0, 2**32 - 1).filter(lambda value: value != array.shape[axis]))
    struct.pack_into(">I", encoded, 4 + 4 * axis, wrong)
    with pytest.raises(InvalidDataError):
        parse_idx(bytes(encoded))


@given(
    st.binary(min_size=4, max_size=4).filter(
        lambda magic: magic[:2] != b"\0\0" or magic[2] not in (8, 9, 11, 12, 13, 14)
    )
)
def test_bad_magic_is_rejected(magic):
    with pytest.raises(InvalidDataError):
        parse_idx(magic + b"\0" * 16)


@settings(max_examples=50)
@given(arrays(np.uint8, shapes), st.data())
def test_corrupt_gzip_is_an_invalid_data_error(array, data):
    compressed = bytearray(gzip.compress(to_idx(array)))
    cut = data.draw(st.integers(2, len(compressed) - 1))
    try:
        parse_idx(decompress_if_gzip(bytes(compressed[:cut]), "test"))
    except InvalidDataError:
        return
    pytest.fail("a truncated gzip stream decoded without error")


def test_images_must_be_28_by_28_uint8():
    check_images(np.zeros((2, 28, 28), np.uint8), "ok")
    for bad in (np.zeros((2, 28, 27), np.uint8), np.zeros((28, 28), np.uint8), np.zeros((2, 28, 28), np.float32)):
        with pytest.raises(InvalidDataError):
            check_images(bad, "bad")


def test_labels_must_be_digits():
    assert check_labels(np.array([0, 9], np.int64), "ok").dtype == np.uint8
    for bad in (np.array([0, 10]), np.array([-1, 3]), np.zeros((2, 2), np.uint8), np.array([0.5])):
        with pytest.raises(InvalidDataError):
            check_labels(bad, "bad")


@settings(max_examples=30)
@given(arrays(np.uint8, shapes), st.booleans())
def test_idx_files_stream_back_gzipped_or_raw(tmp_path_factory, array, compressed):
    path = tmp_path_factory.mktemp("idx") / "data-idx-ubyte"
    encoded = to_idx(array)
    path.write_bytes(gzip.compress(encoded) if compressed else encoded)
    np.testing.assert_array_equal(read_idx_file(path), array)


@settings(max_examples=30)
@given(arrays(np.uint8, shapes), st.data())
def test_streamed_truncated_or_overlong_gzip_is_an_invalid_data_error(tmp_path_factory, array, data):
    path = tmp_path_factory.mktemp("idx") / "data-idx-ubyte.gz"
    compressed = gzip.compress(to_idx(array))
    if data.draw(st.booleans()):
        damaged = compressed[: data.draw(st.integers(2, len(compressed) - 1))]
    else:
        damaged = gzip.compress(to_idx(array) + data.draw(st.binary(min_size=1, max_size=8)))
    path.write_bytes(damaged)
    with pytest.raises(InvalidDataError):
        read_idx_file(path)


def test_decompressing_stops_past_the_bound():
    bomb = gzip.compress(bytes(1 << 20), compresslevel=1)
    assert len(decompress_if_gzip(bomb, "ok", max_bytes=1 << 20)) == 1 << 20
    with pytest.raises(InvalidDataError, match="expands to more than"):
        decompress_if_gzip(bomb, "bomb", max_bytes=1000)
