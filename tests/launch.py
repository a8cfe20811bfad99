"""What the tests that start other processes (gloo groups, a Jupyter server) share; importable
by spawned workers, which see the tests folder on their path."""

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_tok(tok_path):
    """The tokenizer at ``tok_path`` with a pad token (its end-of-sequence token where it has
    none), as the default-model tests use it."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tok_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
