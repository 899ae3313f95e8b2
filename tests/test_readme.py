"""The READMEs are tested: every code block of README.md and bench/README.md runs here.

The convention (also stated at the top of README.md's source):

* ```` ```python ```` blocks of one section (the text under one heading) run in order as
  one script, in a subprocess whose working directory is a scratch copy of the checkout.
  ``# prints: TEXT`` after a statement asserts that the script prints a line ``TEXT``
  (in that order; ``...`` inside TEXT matches anything).
* ```` ```bash ```` / ```` ```sh ```` blocks: every line is a shell command, run in order
  in the same copy with the environment's ``bin`` first on PATH. ```` ```console ````
  blocks: ``$ command`` lines, each followed by lines of what it prints (asserted as
  above; ``...`` alone on a line skips any number of lines).
* ``pip install ...`` runs as ``pip install --dry-run ...`` (with
  ``--no-build-isolation`` where the installed setuptools can build the checkout): the
  resolver proves the named extras exist and their requirements resolve, without
  changing the environment under test.
* An HTML comment right before a block changes how it runs: ``<!-- test: DIRECTIVE;
  DIRECTIVE -->`` with ``every backend`` (run once per installed backend, through
  ``NNX_BACKEND``), ``requires NAME, NAME`` (skip unless each is an importable module
  or a command on PATH), ``gpu`` (skip unless CuPy sees a CUDA device),
  ``file NAME`` (the block is written to NAME for the commands after it, not run by
  itself), ``slow: "COMMAND" as "REDUCED"`` (a long command run in its stated shorter
  form) and ``skip: "COMMAND" because REASON``.
* Other blocks carry ``text`` (output shown for reading) and are not run. A block
  without a language is an error here, so nothing escapes the runner.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import nnx
from nnx import backends as registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "bench/README.md")
RUNS = {"python", "bash", "sh", "console"}
SHOWN = {"text"}
MARKER = re.compile(r"<!--\s*test:(.*?)-->", re.S)
PIP = re.compile(r"\b(?:python -m )?pip install ")
TIMEOUT = 300


def _isolation() -> str:
    """Build a checkout with this environment's setuptools when it is new enough (faster)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("setuptools").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return ""
    return "--no-build-isolation " if major >= 77 else ""   # pyproject's build-system


ISOLATION = _isolation()


@dataclass
class Block:
    doc: str
    section: str
    line: int
    lang: str
    code: str
    directives: list[str] = field(default_factory=list)


def parse(doc: str) -> list[Block]:
    """Every fenced block of ``doc`` with its section and the directives before it."""
    blocks, section, pending, fence = [], "(top)", [], None
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    text = "\n".join(lines)
    for marker in MARKER.finditer(text):   # directives, keyed by the line they end on
        end = text[:marker.end()].count("\n")
        pending.append((end, [d.strip() for d in marker.group(1).split(";") if d.strip()]))
    markers = dict(pending)
    comment = False
    for i, line in enumerate(lines):
        if comment or (fence is None and "<!--" in line):   # fences in comments are text
            comment = "-->" not in line.split("<!--")[-1]
            continue
        if fence is not None:
            if line.strip() == "```":
                blocks.append(Block(doc, section, fence[0] + 1, fence[1], "\n".join(fence[2]),
                                    fence[3]))
                fence = None
            else:
                fence[2].append(line)
            continue
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.startswith("```"):
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            fence = (i, line[3:].strip(), [], markers.get(j, []))
    return blocks


BLOCKS = [b for doc in DOCS for b in parse(doc)]


def directive(blocks: list[Block], name: str) -> list[str]:
    """The arguments of every ``name`` directive on ``blocks`` (``""`` for a bare one)."""
    found = []
    for b in blocks:
        for d in b.directives:
            if d == name or d.startswith(name + " ") or d.startswith(name + ":"):
                found.append(d[len(name):].lstrip(": ").strip())
    return found


def cases() -> dict[str, tuple[str, list[Block]]]:
    """Test cases: a section's python blocks together, and each shell or console block."""
    out: dict[str, tuple[str, list[Block]]] = {}
    for b in BLOCKS:
        if b.lang == "python" and not directive([b], "file"):
            out.setdefault(f"{b.doc}:{b.section}:python", ("python", []))[1].append(b)
        elif b.lang in RUNS - {"python"}:
            n = sum(k.startswith(f"{b.doc}:{b.section}:shell") for k in out)
            out[f"{b.doc}:{b.section}:shell{n + 1}"] = ("shell", [b])
    return out


CASES = cases()


def missing(blocks: list[Block]) -> str | None:
    """Why ``blocks`` cannot run here (a directive's need unmet), or None."""
    bin_dir = os.path.dirname(sys.executable)
    for arg in directive(blocks, "requires"):
        for need in (n.strip() for n in arg.split(",")):
            path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
            if shutil.which(need, path=path) is None and not registry._installed(need):
                return f"needs {need}"
    if directive(blocks, "gpu") and registry.why_unavailable("cupy") is not None:
        return f"needs a CUDA GPU: {registry.why_unavailable('cupy')}"
    return None


@pytest.fixture(scope="module")
def checkout():
    """A scratch copy of the checkout: commands run in it and write into it."""
    with tempfile.TemporaryDirectory(prefix="nnx-readme-") as tmp:
        skip = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build",
                                      "nnx-demos", ".benchmarks", ".whl", "_prompts")
        shutil.copytree(ROOT, tmp, ignore=skip, dirs_exist_ok=True)
        yield Path(tmp)


def environment(backend: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NNX_BACKEND"}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env["MPLBACKEND"] = "Agg"
    if backend:
        env["NNX_BACKEND"] = backend
    return env


def line_matches(expected: str, actual: str) -> bool:
    pattern = expected.strip().replace("[", "[[]").replace("?", "[?]").replace("*", "[*]")
    return fnmatch.fnmatchcase(actual.strip(), pattern.replace("...", "*"))


def assert_prints(expected: list[str], output: str, where: str) -> None:
    """Each expected line appears in ``output``, in order (``...`` lines skip freely)."""
    lines = output.splitlines()
    at = 0
    for want in expected:
        if want.strip() == "...":
            continue
        for k in range(at, len(lines)):
            if line_matches(want, lines[k]):
                at = k + 1
                break
        else:
            raise AssertionError(f"{where}: expected a line {want.strip()!r} after line {at} "
                                 f"of the output:\n{output}")


def run(command: list[str] | str, cwd: Path, env: dict[str, str], where: str) -> str:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, shell=isinstance(command, str),
                          executable="/bin/bash" if isinstance(command, str) else None)
    assert proc.returncode == 0, (f"{where}: exit status {proc.returncode}\n"
                                  f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    assert "does not provide the extra" not in proc.stdout + proc.stderr, proc.stderr
    return proc.stdout


def shell_form(command: str, blocks: list[Block]) -> str | None:
    """The command as the runner runs it: pip as a dry run, slow ones reduced, or None."""
    bare = command.split(" #")[0].strip()
    for arg in directive(blocks, "skip"):
        if arg.startswith(f'"{bare}"'):
            return None
    for arg in directive(blocks, "slow"):
        m = re.fullmatch(r'"(.+)"\s+as\s+"(.+)"', arg)
        assert m, f"slow directive {arg!r}: expected \"COMMAND\" as \"REDUCED\""
        if m.group(1) == bare:
            bare = m.group(2)
            break
    return PIP.sub(f"python -m pip install --dry-run {ISOLATION}", bare)


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of a shell or console block."""
    if block.lang != "console":
        return [(c, []) for c in block.code.splitlines() if c.strip()
                and not c.lstrip().startswith("#")]
    out: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif line.strip():
            out[-1][1].append(line)
    return out


def section_files(doc: str, section: str, into: Path) -> None:
    """Write the section's ``file NAME`` blocks for the commands that use them."""
    for b in BLOCKS:
        if b.doc == doc and b.section == section:
            for name in directive([b], "file"):
                (into / name).write_text(b.code + "\n", encoding="utf-8")


@pytest.mark.parametrize("key", list(CASES))
def test_block_runs_as_written(key, checkout):
    kind, blocks = CASES[key]
    first = blocks[0]
    reason = missing(blocks)
    if reason:
        pytest.skip(f"{first.doc}:{first.line} ({first.section}): {reason}, as marked")
    section_files(first.doc, first.section, checkout)
    if kind == "python":
        scripts = blocks
        code = "\n\n".join(b.code for b in scripts)
        expected = [m.group(1) for m in re.finditer(r"# prints: (.*)$", code, re.M)]
        every = directive(scripts, "every backend")
        for backend in (nnx.available_backends() if every else [None]):
            where = f"{first.doc}:{first.line} ({first.section}, backend {backend or 'default'})"
            out = run([sys.executable, "-c", code], checkout, environment(backend), where)
            assert_prints(expected, out, where)
        return
    for command, expected in commands(first):
        form = shell_form(command, blocks)
        if form is None:
            continue
        where = f"{first.doc}:{first.line} `{form}`"
        out = run(form, checkout, environment(), where)
        assert_prints(expected, out, where)


def test_every_block_has_a_language():
    for b in BLOCKS:
        assert b.lang in RUNS | SHOWN, (
            f"{b.doc}:{b.line}: a code block marked {b.lang!r}; the README runner runs "
            f"{sorted(RUNS)} and shows {sorted(SHOWN)}")


def test_no_indented_commands():
    """Commands in 4-space indented blocks would escape the runner: fence them."""
    for doc in DOCS:
        fenced = False
        for i, line in enumerate((ROOT / doc).read_text(encoding="utf-8").splitlines()):
            fenced ^= line.startswith("```")
            assert fenced or not re.match(r" {4}(pip|python|mpiexec|nnx|\$) ", line), (
                f"{doc}:{i + 1}: an indented command; put it in a ```bash block")


def test_install_hints_name_this_distribution():
    """Every ``pip install`` in the docs and the sources names pyproject's name or extras."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    files = [ROOT / d for d in DOCS] + sorted((ROOT / "src").rglob("*.py")) + sorted(
        (ROOT / "backends").glob("*.py"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"""pip install (?:-e )?['"]?([\w.-]+)\[([\w,-]+|\{[^}]*\})\]""",
                             text):
            name, wanted = m.group(1), m.group(2)
            assert name in (project["name"], ".", "DISTRIBUTION"), (path, m.group(0))
            if not wanted.startswith("{"):
                assert set(wanted.split(",")) <= extras, (path, m.group(0))
    assert registry.DISTRIBUTION == project["name"]
    assert set(registry.PIP_EXTRA.values()) <= extras
