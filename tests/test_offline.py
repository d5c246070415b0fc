"""A full index build and search must open no network connection."""

import socket

import pytest
from pytest_socket import SocketBlockedError, disable_socket, enable_socket

from conftest import make_assistant


@pytest.fixture()
def no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
@pytest.mark.slow
def test_index_and_search_open_no_network_connection(no_network, small_corpus, tmp_path):
    with pytest.raises(SocketBlockedError):  # the guard is really on
        socket.create_connection(("127.0.0.1", 9))
    assistant = make_assistant(small_corpus, tmp_path / "index")
    report = assistant.ensure_index()
    assert len(report.added) == 3
    assert assistant.retrieve("What is FAISS?", top_k=1)[0].doc_id.endswith("faiss.md")
    assert assistant.retrieve("混合专家模型是什么?", top_k=1)[0].doc_id.endswith("moe.txt")
