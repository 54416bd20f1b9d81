"""RemoveContainer moves the container's bundle and writable layer into <state>/trash and
<root>/trash (a rename each) and a background thread deletes them there: the container's
directories are gone when the call returns, the trash empties by itself, and what a stopped or
crashed hulld left in it is deleted when hulld starts again."""
import os

import cri
from conftest import pb
from leaks import state_entries
from registry import busybox_image, registry  # noqa: F401  (fixtures)


def trash_dirs(d):
    return [os.path.join(d.root, "trash"), os.path.join(d.state_dir, "trash")]


def trash_empty(d):
    return all(os.path.isdir(t) and os.listdir(t) == [] for t in trash_dirs(d))


def test_removed_container_directories_go_at_once_and_the_trash_empties(
        hulld_factory, registry, busybox_image, tmp_path):  # noqa: F811
    d = cri.prepare(hulld_factory("--insecure-registry", registry.host), busybox_image,
                    tmp_path)
    pod, pcfg = cri.new_pod(d, "p", network=pb.NODE)
    cids = [cri.new_container(d, pod, pcfg, f"c{i}", ["sh", "-c", "echo x > /f; sleep 100"])
            for i in range(3)]
    for cid in cids:
        cri.start_container(d, cid)
        cri.stop_container(d, cid)
        cri.remove_container(d, cid)
        # nothing of it is left where it lived, the moment the call returns
        for top in (os.path.join(d.root, "containers"), os.path.join(d.state_dir, "containers")):
            assert not os.path.exists(os.path.join(top, cid))
    cri.wait_for(lambda: trash_empty(d), what="the trash emptied by hulld")
    cri.remove_all_pods(d)
    assert state_entries(d) == []


def test_trash_left_by_a_stopped_hulld_is_emptied_at_start(hulld_factory):
    d = hulld_factory()
    assert d.stop() == 0
    left = []
    for t in trash_dirs(d):
        # what a crash between the rename and the deletion leaves: a full container tree
        tree = os.path.join(t, "a" * 64, "upper", "etc")
        os.makedirs(tree)
        with open(os.path.join(tree, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")
        os.chmod(os.path.join(t, "a" * 64), 0o700)
        left.append(os.path.join(t, "a" * 64))
    d.start()
    cri.wait_for(lambda: not any(os.path.exists(p) for p in left),
                 what="the trash of the previous run deleted")
    assert trash_empty(d)
    for t in trash_dirs(d):
        assert os.stat(t).st_mode & 0o777 == 0o700
