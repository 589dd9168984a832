"""Packaging checks for the member distributions (every top-level ``tinyq-*`` folder that has a
pyproject.toml) and the root developer install that repeats their metadata.

The fast tests compare the pyproject files; the ``packaging`` ones build each member's wheel from
a copy of its folder (so the repo tree gets no build/ or *.egg-info), look inside the wheels, and
install them in a fresh venv (dependencies come from the package index) to run a job end to end.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement  # comes with `build`, a test dependency
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; CI runs 3.11

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted(p for p in ROOT.glob("tinyq-*") if (p / "pyproject.toml").is_file())


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


ROOT_PYPROJECT = _load(ROOT / "pyproject.toml")
MEMBER_PYPROJECTS = {m.name: _load(m / "pyproject.toml") for m in MEMBERS}


def _req(req: str) -> Requirement:
    return Requirement(req)


def _req_name(req: str) -> str:
    return canonicalize_name(Requirement(req).name)


MEMBER_DISTS = {
    canonicalize_name(pp["project"]["name"]): name for name, pp in MEMBER_PYPROJECTS.items()
}


def _member_packages(member: Path) -> list[str]:
    """Every package (folder with __init__.py) under the member's src/, dotted."""
    src = member / "src"
    return sorted(
        ".".join(init.parent.relative_to(src).parts)
        for init in src.rglob("__init__.py")
        if "__pycache__" not in init.parts
    )


def _top_packages(member: Path) -> list[str]:
    return [p for p in _member_packages(member) if "." not in p]


def _source_files(member: Path) -> set[str]:
    """Files under the member's src/ packages that a wheel should carry, as wheel paths."""
    src = member / "src"
    out = set()
    for top in _top_packages(member):
        for f in (src / top).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix not in {".pyc", ".pyo"}:
                out.add(f.relative_to(src).as_posix())
    return out


def test_members_found() -> None:
    names = [m.name for m in MEMBERS]
    assert "tinyq-core" in names and "tinyq-memory" in names, names


# -- root pyproject vs the members' -------------------------------------------------------------


def test_root_entry_points_and_scripts_are_the_union_of_the_members() -> None:
    union: dict[str, dict[str, str]] = {}
    scripts: dict[str, str] = {}
    for name, pp in MEMBER_PYPROJECTS.items():
        for group, eps in pp["project"].get("entry-points", {}).items():
            for ep, target in eps.items():
                other = union.setdefault(group, {}).get(ep)
                assert other in (None, target), f"{name}: entry point {group}:{ep} clashes"
                union[group][ep] = target
        for script, target in pp["project"].get("scripts", {}).items():
            assert scripts.get(script, target) == target, f"{name}: script {script} clashes"
            scripts[script] = target
    root = ROOT_PYPROJECT["project"]
    assert root.get("entry-points", {}) == union
    assert root.get("scripts", {}) == scripts
    assert "gui-scripts" not in root or root["gui-scripts"] == {}


def test_root_dependencies_cover_the_members_runtime_dependencies() -> None:
    root = [_req(r) for r in ROOT_PYPROJECT["project"].get("dependencies", [])]
    missing = {}
    for name, pp in MEMBER_PYPROJECTS.items():
        for req in pp["project"].get("dependencies", []):
            if _req_name(req) in MEMBER_DISTS:
                continue  # the root install provides the members itself
            if _req(req) not in root:
                missing.setdefault(name, []).append(req)
    assert not missing, f"root pyproject [project] dependencies lack {missing}"
    root_names = {_req_name(r) for r in ROOT_PYPROJECT["project"].get("dependencies", [])}
    assert not root_names & set(MEMBER_DISTS), "the root must not depend on its own members"


def test_members_pin_each_other_at_their_current_versions() -> None:
    versions = {
        canonicalize_name(pp["project"]["name"]): pp["project"]["version"]
        for pp in MEMBER_PYPROJECTS.values()
    }
    for name, pp in MEMBER_PYPROJECTS.items():
        for req in pp["project"].get("dependencies", []):
            dist = _req_name(req)
            if dist in versions:
                assert _req(req) == _req(f"{dist}=={versions[dist]}"), (
                    f"{name} requires {req!r}; members pin each other exactly ({dist} is "
                    f"{versions[dist]})"
                )


def test_member_metadata_files_exist() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    for member in MEMBERS:
        project = MEMBER_PYPROJECTS[member.name]["project"]
        readme = project.get("readme")
        assert readme and (member / readme).is_file(), f"{member.name}: readme {readme!r}"
        assert project.get("license") == "MIT", member.name
        # a member builds from its own folder, which cannot reach the root LICENSE
        assert (member / "LICENSE").read_text() == license_text, (
            f"{member.name}/LICENSE must be a copy of the root LICENSE"
        )


def test_root_wheel_packages_cover_every_member_package() -> None:
    """The root (hatchling) ships each member's top-level package folders whole, and its
    editable install puts exactly the members' src folders on the path (.pth, mypy reads it)."""
    listed = ROOT_PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    expected = []
    for member in MEMBERS:
        tops = _top_packages(member)
        assert tops, f"{member.name}/src holds no package"
        for top in tops:
            expected.append((member / "src" / top).relative_to(ROOT).as_posix())
            assert (member / "src" / top / "py.typed").is_file(), f"{top} lacks py.typed"
    assert sorted(listed) == sorted(expected), (
        "root [tool.hatch.build.targets.wheel] packages must name every member's package folder"
    )
    assert ROOT_PYPROJECT["build-system"]["build-backend"] == "hatchling.build", (
        "setuptools' editable install of four package folders is an import hook that mypy "
        "cannot follow: keep the root on a backend whose editable install is a .pth file"
    )


class _CaseConfigParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:  # entry point names are case-sensitive
        return optionstr


# -- built wheels -------------------------------------------------------------------------------

_COPY_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".mypy_cache", ".ruff_cache"
)


def _build_leftovers() -> set[Path]:
    return {
        p
        for member in MEMBERS
        for p in [member / "build", member / "dist", *member.rglob("*.egg-info")]
        if p.exists()
    }


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each member's wheel, built (isolated) from a copy of its folder: {member folder: wheel}."""
    base = tmp_path_factory.mktemp("wheels")
    outdir = base / "dist"
    before = _build_leftovers()
    procs = []
    for member in MEMBERS:
        copy = base / "src" / member.name
        shutil.copytree(member, copy, ignore=_COPY_IGNORE)
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(copy)]
        log = (base / f"{member.name}.log").open("w")
        procs.append((member, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
    for member, log, proc in procs:
        rc = proc.wait(timeout=300)
        log.close()
        assert rc == 0, f"building {member.name} failed:\n{Path(log.name).read_text()[-4000:]}"
    built = {}
    for member in MEMBERS:
        stem = MEMBER_PYPROJECTS[member.name]["project"]["name"].replace("-", "_")
        found = sorted(outdir.glob(f"{stem}-*.whl"))
        assert len(found) == 1, (member.name, found)
        built[member.name] = found[0]
    assert _build_leftovers() == before, "building left build/ or *.egg-info in the repo tree"
    return built


@pytest.mark.packaging
@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: m.name)
def test_wheel_contents(member: Path, wheels: dict[str, Path]) -> None:
    project = MEMBER_PYPROJECTS[member.name]["project"]
    with zipfile.ZipFile(wheels[member.name]) as zf:
        names = set(zf.namelist())
        dist_info = f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
        tops = {n.split("/", 1)[0] for n in names}
        assert tops == {*_top_packages(member), dist_info}, "the wheel must hold only its package"
        package_files = {n for n in names if not n.startswith(dist_info + "/")}
        assert package_files == _source_files(member), "wheel files != the member's src files"

        metadata = Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        assert metadata["Name"] == project["name"]
        assert metadata["Version"] == project["version"]
        assert metadata["License-Expression"] == "MIT"
        assert f"{dist_info}/licenses/LICENSE" in names
        assert metadata.get_payload().strip(), "the README is the long description"
        requires = [_req(r) for r in metadata.get_all("Requires-Dist") or []]
        declared = [_req(r) for r in project.get("dependencies", [])]
        declared += [_req(f'{r}; extra == "{extra}"')  # optional ones (tinyq-core[dashboard])
                     for extra, reqs in project.get("optional-dependencies", {}).items()
                     for r in reqs]
        assert len(requires) == len(declared) and all(r in declared for r in requires), requires

        expected = {g: dict(eps) for g, eps in project.get("entry-points", {}).items()}
        if project.get("scripts"):
            expected["console_scripts"] = dict(project["scripts"])
        parser = _CaseConfigParser(delimiters=("=",), interpolation=None)
        if f"{dist_info}/entry_points.txt" in names:
            parser.read_string(zf.read(f"{dist_info}/entry_points.txt").decode())
        got = {s: dict(parser[s]) for s in parser.sections()}
        assert got == expected


# -- install the wheels in a fresh venv ---------------------------------------------------------


@pytest.fixture(scope="module")
def installed_venv(
    tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]
) -> Iterator[Path]:
    """A fresh venv (no system site-packages) with the member wheels installed; its bin dir."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    wanted = [wheels[name] for name in ("tinyq-core", "tinyq-memory")]
    # The wheels are named by path, so pip can't take a same-named project from the index;
    # their dependencies (pluggy, attrs, cloudpickle) come from the index.
    cmd = [
        str(bindir / "python"), "-m", "pip", "install", "--disable-pip-version-check",
        "--no-input", "-q", "--find-links", str(wanted[0].parent), *map(str, wanted),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield bindir


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_TARGET"))}
    env.pop("VIRTUAL_ENV", None)
    return env


_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import tinyq_core
    import tinyq_memory
    from tinyq_core import Application

    for mod in (tinyq_core, tinyq_memory):
        assert Path(mod.__file__).is_relative_to(sys.prefix), (mod.__file__, sys.prefix)

    app = Application("memory://")

    @app.task
    def add(a, b):
        return a + b

    h = add.delay(2, 3)
    app.worker(concurrency=2).run(burst=True)
    assert h.result(timeout=5) == 5
    print("result", h.result(timeout=5))
    """
)


@pytest.mark.packaging
def test_installed_wheels_run_a_job(installed_venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(installed_venv / "python"), "-c", _SCRIPT],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "result 5"


@pytest.mark.packaging
def test_installed_wheels_are_consistent(installed_venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(installed_venv / "python"), "-m", "pip", "check", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.packaging
def test_installed_cli_prints_its_version(installed_venv: Path, tmp_path: Path) -> None:
    version = MEMBER_PYPROJECTS["tinyq-core"]["project"]["version"]
    proc = subprocess.run(
        [str(installed_venv / "tinyq"), "-V"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert version in proc.stdout.split(), proc.stdout + proc.stderr
