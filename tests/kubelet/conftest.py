"""Fixtures for tests/kubelet: a real docker-registry with busybox-based images built here, one
shared standalone kubelet on a private hulld for the whole session (`env`), and a check after
every test that kubelet logged no CRI error during it (kubelet_env.ALLOWED lists, with reasons,
the ones that are not hulld's fault)."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import kubelet_env  # noqa: E402
from registry import Registry, busybox_entries, make_layer  # noqa: E402


def pytest_sessionstart(session):
    for path, how in ((kubelet_env.KUBELET, "tests/tools/build-kubelet.sh"),
                      (kubelet_env.CRICTL, "tests/tools/build-cri-tools.sh"),
                      (os.path.join(kubelet_env.BUILD, "hulld"), "make")):
        if not os.access(path, os.X_OK):
            pytest.exit(f"{path} is missing: run {how} (or make kubelet-test)", returncode=2)


def applets():
    out = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a not in ("busybox", "[", "[[")]


class Images:
    def __init__(self, reg):
        self.busybox = reg.push_image(
            "kt/busybox", "1", [make_layer(busybox_entries(applets()))],
            config={"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}).ref
        data = [{"name": "data/", "type": "dir"},
                {"name": "data/hello.txt", "data": "hello from an image volume\n"},
                {"name": "data/sub/", "type": "dir"},
                {"name": "data/sub/deep.txt", "data": "deep\n"}]
        self.data = reg.push_image("kt/data", "1", [make_layer(data)]).ref


@pytest.fixture(scope="session")
def registry():
    r = Registry()
    yield r
    r.close()


@pytest.fixture(scope="session")
def images(registry):
    return Images(registry)


def make_env(registry, images, **kw):
    env = kubelet_env.Env(registry, images, **kw)
    try:
        env.start()
    except BaseException:
        env.close()
        raise
    return env


def close_env(env):
    problems = env.close()  # includes the CRI errors kubelet logged while stopping the pods
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture(scope="session")
def env(registry, images):
    e = make_env(registry, images)
    yield e
    close_env(e)


@pytest.fixture(scope="session")
def cri_env(registry, images):
    """A second kubelet and hulld: the evented PLEG (GetContainerEvents) and every stat from
    the CRI (ListPodSandboxStats / ListContainerStats)."""
    e = make_env(registry, images, feature_gates={"EventedPLEG": True,
                                                  "PodAndContainerStatsFromCRI": True},
                 verbosity=4)
    yield e
    close_env(e)


@pytest.fixture(autouse=True)
def no_cri_errors(request):
    """Fails the test when kubelet logged a CRI error while it ran."""
    envs = []
    for name in ("env", "cri_env"):
        if name in request.fixturenames:
            envs.append(request.getfixturevalue(name))
    # whatever kubelet logged since the previous check (including pod teardown after the
    # previous test, or start-up) counts for this test: nothing is dropped unchecked
    yield
    for e in envs:
        # a failed test leaves its pods: remove them so that they do not disturb the next ones
        for name in list(e.applied):
            e.delete(name, wait=False)
    for e in envs:
        errors = e.check_log()
        if errors:
            pytest.fail("kubelet logged CRI errors (each is a hulld bug unless "
                        "kubelet_env.ALLOWED says otherwise):\n" + "\n".join(errors[:40]))
