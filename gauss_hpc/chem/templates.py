"""Complex templates as data: a named metal, geometry and equatorial ligand set with two axial sites for the
ligand L (gauss_hpc/complex_templates.toml; DEFAULT is the paper's [Dy(H2O)5L2]+)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..abinitio.values import DEFAULT_TEMPLATE as DEFAULT     # the paper's [Dy(H2O)5L2]+

__all__ = ["DEFAULT", "Template", "template", "templates"]
TEMPLATES_PATH = Path(__file__).parents[1] / "complex_templates.toml"


@dataclass(frozen=True)
class Template:
    name: str
    description: str = ""
    metal: str = "Dy"
    oxidation_state: int = 3
    geometry: str = "pbp"
    equatorial: str = "O"
    n_equatorial: int = 5
    equatorial_distance: float = 0.0     # metal-equatorial donor distance (A); 0 keeps molSimplify's

    def assemble_params(self) -> dict:
        """The keyword arguments of chem.complexes.assemble that build this template."""
        params = {k: v for k, v in asdict(self).items() if k not in ("name", "description", "equatorial_distance")}
        if self.equatorial_distance:
            params["metal_donor_distance"] = {"equatorial": self.equatorial_distance}
        return params


def templates() -> dict[str, Template]:
    """Every shipped template by name; unknown keys in the file are errors."""
    from ..config import read_toml

    path = TEMPLATES_PATH
    known = {f.name for f in fields(Template)} - {"name"}
    out = {}
    for name, entry in read_toml(path).items():
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"{path}: template {name!r}: unknown keys {unknown}; expected some of {sorted(known)}")
        out[name] = Template(name=name, **entry)
    return out


def template(name: str) -> Template:
    """The template called `name`; ValueError listing the shipped ones otherwise."""
    shipped = templates()
    if name not in shipped:
        raise ValueError(f"template {name!r}: expected one of {', '.join(shipped)}")
    return shipped[name]
