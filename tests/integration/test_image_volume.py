"""Image volumes (CRI Mount.image, image_sub_path) end to end: a second image with known files
is pushed to the test registry, pulled, and mounted read-only into real containers (hull-oci
and runc)."""
import grpc
import pytest

import cri
from conftest import pb
from cri import sh
from registry import make_layer, registry  # noqa: F401  (fixture)
from cri import wait_state
from ctr import code_of, create, run_pod, userns_pod
from registry import busybox_image  # noqa: F401  (fixture)

HANDLERS = ["hull-oci", "runc"]


@pytest.fixture(scope="module")
def data_image(registry):  # noqa: F811
    """Two layers: the second overrides a file of the first and adds symlinks that try to
    leave the image."""
    l1 = make_layer([
        {"name": "data/", "type": "dir"},
        {"name": "data/hello.txt", "data": "hello v1\n"},
        {"name": "data/sub/", "type": "dir"},
        {"name": "data/sub/deep.txt", "data": "deep\n"},
    ])
    l2 = make_layer([
        {"name": "data/", "type": "dir"},
        {"name": "data/hello.txt", "data": "hello from the image\n"},
        {"name": "data/abs", "type": "symlink", "target": "/data/sub"},
        {"name": "data/escape", "type": "symlink", "target": "../../../../../etc"},
        {"name": "data/file", "type": "symlink", "target": "/etc/hostname"},
    ])
    return registry.push_image("vol/data", "1", [l1, l2])


@pytest.fixture
def d(hulld_factory, registry, busybox_image, data_image, tmp_path):  # noqa: F811
    h = hulld_factory("--insecure-registry", registry.host, "--runtime", "runc=/usr/sbin/runc")
    yield cri.prepare(h, busybox_image, tmp_path / "logs", "hull-oci", more_images=[data_image])
    cri.remove_all_pods(h)


def image_mount(path, ref, sub=""):
    return pb.Mount(container_path=path, image=pb.ImageSpec(image=ref), image_sub_path=sub,
                    readonly=True)


def overlay_mounts(base):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f
                if l.split()[4].startswith(base) and "image-mounts" in l.split()[4]]


@pytest.mark.parametrize("handler", HANDLERS)
def test_image_volume_content_read_only(d, data_image, handler):
    pod, pcfg = run_pod(d, "iv-" + handler.replace("-", ""), handler=handler)
    mounts = [image_mount("/img", data_image.ref),
              image_mount("/sub", data_image.ref, "data/sub"),
              image_mount("/abs", data_image.ref, "data/abs"),
              image_mount("/one.txt", data_image.ref, "data/hello.txt")]
    cid = create(d, pod, pcfg, "c", ["sleep", "1000"], mounts=mounts)
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    code, out, err = sh(d, cid, "cat /img/data/hello.txt /img/data/sub/deep.txt /sub/deep.txt "
                                "/abs/deep.txt /one.txt")
    assert code == 0, err
    assert out == "hello from the image\ndeep\ndeep\ndeep\nhello from the image\n"
    code, _, err = sh(d, cid, "touch /img/data/new")
    assert code != 0 and "Read-only file system" in err, err
    assert sh(d, cid, "echo x > /sub/deep.txt")[0] != 0
    assert len(overlay_mounts(d.base)) == len(mounts)  # one read-only overlay each
    # removing the container unmounts the image
    d.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    assert overlay_mounts(d.base) == []


def test_image_volume_status_and_read_only(d, data_image):
    """ContainerStatus reports each image volume with the image id it resolved to (the
    ImageSpec.image_ref critest v1.37 checks); a volume not asked read-only is refused (image
    volumes are read-only, and kubelet always asks so)."""
    pod, pcfg = run_pod(d, "ivst")
    cid = create(d, pod, pcfg, "c", ["sleep", "1000"],
                 mounts=[image_mount("/img", data_image.ref)])
    st = d.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
    m = [m for m in st.mounts if m.container_path == "/img"][0]
    assert m.image.image == data_image.ref
    assert m.image.image_ref == data_image.id
    rw = pb.Mount(container_path="/rw", image=pb.ImageSpec(image=data_image.ref), readonly=False)
    with pytest.raises(grpc.RpcError) as e:
        create(d, pod, pcfg, "rw", ["sleep", "1000"], mounts=[rw])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "read-only" in e.value.details()


def test_image_volume_sub_path_confined(d, data_image):
    pod, pcfg = run_pod(d, "ivbad")

    def make(sub, ref=data_image.ref):
        return lambda: create(d, pod, pcfg, "c", ["true"], mounts=[image_mount("/x", ref, sub)])

    for sub in ("../etc", "data/../../etc", "/data"):
        code, msg = code_of(make(sub))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (sub, msg)
    # symlinks are resolved inside the image: its "../../../../../etc" is the image's /etc,
    # which does not exist (never the host's)
    for sub in ("data/escape", "data/escape/passwd", "data/file", "data/missing"):
        code, msg = code_of(make(sub))
        assert code == grpc.StatusCode.NOT_FOUND, (sub, msg)
    # an image that was never pulled
    code, msg = code_of(make("", ref=data_image.ref.replace("vol/data", "vol/nothere")))
    assert code == grpc.StatusCode.NOT_FOUND, msg
    # nothing was left behind by the refused creations
    assert overlay_mounts(d.base) == []
    assert not d.runtime.ListContainers(pb.ListContainersRequest()).containers


def test_image_volume_image_removed_while_in_use(d, data_image):
    pod, pcfg = run_pod(d, "ivrm")
    cid = create(d, pod, pcfg, "c", ["sleep", "1000"],
                 mounts=[image_mount("/img", data_image.ref)])
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    # as for a container's own image: RemoveImage succeeds, the image is no longer listed,
    # and the running container keeps its content until it is removed
    d.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=data_image.ref)))
    refs = [t for i in d.image.ListImages(pb.ListImagesRequest()).images for t in i.repo_tags]
    assert data_image.ref not in refs
    assert sh(d, cid, "cat /img/data/hello.txt")[1] == "hello from the image\n"
    # a new container cannot use it any more (not pulled)
    code, _ = code_of(lambda: create(d, pod, pcfg, "c2", ["true"],
                                     mounts=[image_mount("/img", data_image.ref)]))
    assert code == grpc.StatusCode.NOT_FOUND
    d.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
    d.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    assert overlay_mounts(d.base) == []
    # pulled again, it works again
    d.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=data_image.ref)))
    cid = create(d, pod, pcfg, "c3", ["cat", "/img/data/sub/deep.txt"],
                 mounts=[image_mount("/img", data_image.ref)])
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    assert wait_state(d, cid, pb.CONTAINER_EXITED).exit_code == 0


@pytest.mark.parametrize("handler", HANDLERS)
def test_image_volume_in_pod_user_namespace(d, data_image, handler):
    """The image's layers are id-mapped like the rootfs's: root-owned files are the pod root's."""
    import os
    os.chmod(d.base, 0o711)
    pod, pcfg = userns_pod(d, "ivuns-" + handler.replace("-", ""), handler)
    cid = create(d, pod, pcfg, "c", ["sleep", "1000"],
                 mounts=[image_mount("/img", data_image.ref),
                         image_mount("/sub", data_image.ref, "data/sub")])
    d.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    wait_state(d, cid, pb.CONTAINER_RUNNING)
    code, out, err = sh(d, cid, "cat /proc/self/uid_map; stat -c %u:%g /img/data/hello.txt "
                                "/sub/deep.txt; cat /sub/deep.txt")
    assert code == 0, err
    assert out.split() == ["0", "200000", "65536", "0:0", "0:0", "deep"], out
    assert sh(d, cid, "touch /img/x")[0] != 0
    d.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    d.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert overlay_mounts(d.base) == []
