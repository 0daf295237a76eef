"""Waiting on descriptors numbered past select(2)'s ceiling of 1024."""

from __future__ import annotations

import os
import resource

import pytest

from ledger.fd_wait import readable

HIGH = 1500


@pytest.fixture
def high_pipe():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH + 1:
        pytest.skip(f"this system allows {hard} descriptors")
    if soft != resource.RLIM_INFINITY and soft <= HIGH + 1:
        resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH + 2, hard))
    r, w = os.pipe()
    os.dup2(r, HIGH)
    os.close(r)
    try:
        yield HIGH, w
    finally:
        os.close(HIGH)
        os.close(w)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_descriptor_past_1024_is_waited_on(high_pipe):
    r, w = high_pipe
    assert readable([r], 0.01) == []
    os.write(w, b"x")
    assert readable([r], 1) == [r]


def test_a_closed_descriptor_counts_as_ready():
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    assert readable([r], 0.01) == [r]
