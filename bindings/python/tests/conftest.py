"""Fixtures of the pytest suite that drives Intake's client library through its
Python bindings (issue 15): the generated module, a real `intake-server` on a free
loopback port, and helpers to add users and stores.

Run by `scripts/test-bindings` (and so by `scripts/test` and CI), which generates the
bindings into a temporary directory and names it in INTAKE_BINDINGS_PY, and names the
built server in INTAKE_SERVER_BIN. Nothing here prints record content, tokens, keys
or passphrases.
"""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading

import pytest

sys.path.insert(0, os.environ["INTAKE_BINDINGS_PY"])

import intake_bindings  # noqa: E402  (the path above is where it was generated)

SERVER_BIN = os.environ["INTAKE_SERVER_BIN"]
# A passphrase the strength check accepts (zxcvbn): stores are created with it.
PASSPHRASE = "violet tractor harbour pencil 1947"


class Server:
    """`intake-server` in a temporary data directory, serving on 127.0.0.1:0."""

    def __init__(self, data):
        self.data = data
        self.admin("init", "--json")
        self.process = subprocess.Popen(
            [SERVER_BIN, "--data", data, "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # "Intake server listening on http://127.0.0.1:PORT (data in ...)"
        line = self.process.stdout.readline()
        assert "listening on" in line, line
        self.url = line.split("listening on ")[1].split()[0]
        # Whatever else it prints is read and dropped, so a full pipe never stalls it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def admin(self, *args):
        """Runs an admin command against the data directory; its JSON output."""
        out = subprocess.run(
            [SERVER_BIN, "--data", self.data, *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out) if out.strip().startswith(("{", "[")) else out

    def add_user(self, name, role, team="north"):
        """Adds a user; their one-time enrolment code."""
        return self.admin("user", "add", name, "--role", role, "--team", team, "--json")[
            "enrolment_code"
        ]

    def device_id(self, user):
        return next(d["id"] for d in self.admin("device", "list", "--json") if d["user"] == user)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def ib():
    """The generated bindings module."""
    return intake_bindings


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory() as data:
        s = Server(os.path.join(data, "server"))
        yield s
        s.stop()


@pytest.fixture
def new_store(tmp_path):
    """Makes stores with raw keys (as the platform keystore hands them over); returns
    (store, dir, key)."""

    def make(name, lang="en"):
        directory = str(tmp_path / name)
        key = secrets.token_bytes(32)
        store = intake_bindings.IntakeStore.create_with_key(directory, key)
        store.set_language(lang)
        return store, directory, key

    return make


_users = iter(range(10_000))


@pytest.fixture
def person(server, new_store):
    """An enrolled device of a new user of `role`: (store, user name, dir). The people
    of one test share a team of their own, so a supervisor sees only that test's
    records."""
    own_team = f"team{next(_users)}"

    def make(role, team=own_team, lang="en"):
        name = f"{role}{next(_users)}"
        code = server.add_user(name, role, team)
        store, directory, _ = new_store(name, lang)
        info = store.enroll(server.url, code, f"{name}'s phone", None)
        assert info.user == name and info.role == role
        return store, name, directory

    return make


def fields(view):
    """A record view's answers as {name: display}."""
    return {f.name: f.display for f in view.fields}


def files_of(directory):
    """Every file in a store directory with its bytes."""
    out = {}
    for root, _, names in os.walk(directory):
        for n in names:
            path = os.path.join(root, n)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = f.read()
    return out
