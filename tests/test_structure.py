"""The package's shape: no import cycles between its modules, at import time, and names
owned in one place."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ai_digest_qa"


def _top_level_imports(path: Path) -> set[str]:
    """Sibling modules imported when ``path`` is imported (not inside functions, not
    under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_no_import_cycles():
    graph = {p.stem: _top_level_imports(p) for p in PACKAGE.glob("*.py")}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            assert state.get(target) != "open", " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


BACKEND_CLASSES = {"FaissVectors", "MilvusVectors"}


def test_no_module_asks_which_vector_store_class_it_holds():
    """Backends differ through the ChunkVectors protocol's capabilities (collection,
    reconcile, keyword_search, write_info), not through isinstance checks on them."""
    offenders = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "isinstance" and len(node.args) == 2):
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if names & BACKEND_CLASSES:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_backend_names_come_from_the_registry_alone():
    """The config, the CLI and the page take the backends' names from backends.py
    (tests/test_backends.py checks that no module compares them itself)."""
    from ai_digest_qa import backends
    from ai_digest_qa.config import LLM_BACKENDS, VECTOR_STORES
    from ai_digest_qa.ui import MODES

    assert LLM_BACKENDS == backends.names("llm") and all(label for label, _ in MODES)
    assert [value for _, value in MODES] == list(LLM_BACKENDS)
    source = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    assert "choices=LLM_BACKENDS" in source and "choices=VECTOR_STORES" in source
    assert '"faiss", "milvus"' not in source and VECTOR_STORES == ("faiss", "milvus")
    # An unknown name gets one wording, made in one place.
    worded = [p.name for p in PACKAGE.glob("*.py")
              if "is not known" in p.read_text(encoding="utf-8")]
    assert worded == ["errors.py"]
    # The registry and the config import no backend module, not even inside a function.
    assert _package_imports(PACKAGE / "config.py") == {"backends", "errors"}
    assert _package_imports(PACKAGE / "backends.py") <= {"errors", "config"}


def _package_imports(path: Path) -> set[str]:
    """Sibling modules ``path`` imports anywhere (functions and TYPE_CHECKING included)."""
    return {node.module.split(".")[0] if node.module else alias.name
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and node.level == 1
            for alias in node.names}


def test_every_data_file_is_package_data():
    """A file under data/ that no package-data pattern of pyproject.toml names would be
    missing from an installed wheel (the stoplist, the lexicon, the glossary)."""
    import fnmatch

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    pyproject = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text("utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ai_digest_qa"]
    files = [p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "data").iterdir()
             if p.is_file()]
    assert "data/stopwords.txt" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)] == []
