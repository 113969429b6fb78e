"""The package's public surface: every public name and method has a docstring and a stub."""

import ast
import inspect
from pathlib import Path

import annpage

STUBS = ast.parse((Path(annpage.__file__).parent / "__init__.pyi").read_text())


def _stubbed():
    """Names defined at the top of the stub file, and each stubbed class's member names."""
    top, members = set(), {}
    for node in STUBS.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            top.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            top.update(a.asname or a.name for a in node.names)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {
                n.name if isinstance(n, (ast.FunctionDef, ast.ClassDef)) else getattr(getattr(n, "target", None), "id", None)
                for n in node.body
            } | {t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    return top, members


def test_every_public_name_has_a_docstring_and_a_stub():
    top, _ = _stubbed()
    missing = [n for n in annpage.__all__ if n not in top]
    undocumented = [n for n in annpage.__all__ if not inspect.getdoc(getattr(annpage, n))]
    assert missing == [] and undocumented == [], (missing, undocumented)


def test_every_public_method_of_a_handle_has_a_docstring_and_a_stub():
    _, members = _stubbed()
    gaps = []
    classes = [getattr(annpage, n) for n in annpage.__all__ if inspect.isclass(getattr(annpage, n))]
    for cls in [c for c in classes if not issubclass(c, Exception)]:
        for name, value in vars(cls).items():
            if name.startswith("_") or not (callable(value) or isinstance(value, property)):
                continue
            if not inspect.getdoc(value):
                gaps.append(f"{cls.__name__}.{name}: no docstring")
            # A method a subclass overrides is stubbed once, on the class it overrides.
            if not any(name in members.get(c.__name__, ()) for c in cls.__mro__):
                gaps.append(f"{cls.__name__}.{name}: no stub")
    assert gaps == []
