"""Single-key terminal input: parsing, the key map, and raw mode on a real pseudo-terminal."""

from __future__ import annotations

import os
import termios

import pytest

from prtvoice.keys import KeyReader, dispatch, parse_keys


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        (b" ", ["space"]),
        (b"\x1b[A\x1b[B\x1b[C\x1b[D", ["up", "down", "right", "left"]),
        (b"\x1bOC\x1bOD", ["right", "left"]),  # application cursor mode
        (b"Q", ["q"]),
        (b"\x03", ["ctrl-c"]),
        (b"\x1b[1;5C q", ["space", "q"]),  # an unknown sequence is skipped whole
        (b"\x1b", ["escape"]),
        (b"+-", ["+", "-"]),
    ],
)
def test_parse_keys(data, keys):
    assert parse_keys(data) == keys


class Recorder:
    def __init__(self):
        self.calls: list[str] = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name + ("(fade)" if kwargs.get("fade") else ""))

        return call


@pytest.mark.parametrize(
    ("key", "call", "goes_on"),
    [
        ("space", "toggle", True),
        ("right", "next_section", True),
        ("left", "previous_section", True),
        ("up", "volume_up", True),
        ("down", "volume_down", True),
        ("q", "stop(fade)", False),
        ("ctrl-c", "stop(fade)", False),
    ],
)
def test_dispatch_maps_keys_to_controller(key, call, goes_on):
    controller = Recorder()
    assert dispatch(key, controller) is goes_on
    assert controller.calls == [call]


def test_unknown_key_does_nothing():
    controller = Recorder()
    assert dispatch("x", controller) is True
    assert controller.calls == []


def test_key_reader_on_a_pty_reads_without_enter_and_restores():
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "rb", buffering=0, closefd=False) as stream:
            before = termios.tcgetattr(slave)
            assert KeyReader.is_terminal(stream)
            with KeyReader(stream) as reader:
                raw = termios.tcgetattr(slave)
                assert not raw[3] & termios.ICANON
                assert not raw[3] & termios.ECHO
                assert not raw[3] & termios.ISIG  # Ctrl-C arrives as a key
                assert reader.read(0.05) == []
                os.write(master, b"\x1b[C")
                assert reader.read(2.0) == ["right"]
                os.write(master, b" \x03")
                assert reader.read(2.0) == ["space", "ctrl-c"]
            assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_a_pipe_is_not_a_terminal():
    read, write = os.pipe()
    try:
        with os.fdopen(read, "rb", closefd=False) as stream:
            assert not KeyReader.is_terminal(stream)
    finally:
        os.close(read)
        os.close(write)
