"""Claims and their verdicts, over one seed or several: the one place the rule lives.

A claim's verdict is a **rule**: a Python comparison over the names of its measured numbers,
e.g. ``"plain56_train_err > plain20_train_err + spread"`` or ``"val_loss <= threshold"``.
It may use numbers, ``+ - * / **``, ``abs min max log log10``, indexing (``wer[-1]``),
chained comparisons and ``and / or / not``; nothing else is evaluated.

**One seed.** The rule is evaluated on the measured numbers with ``spread = 0``.

**Several seeds** (the verdict on the aggregate). Every comparison ``L op R`` of the rule is
decided on the means over seeds: ``mean_s L_s  op  mean_s R_s``, where ``L_s``, ``R_s`` are
the two sides evaluated on seed ``s``'s numbers. Inside that comparison the name ``spread``
stands for the seed-to-seed standard deviation (ddof 1) of the paired difference
``L_s − R_s`` (each side evaluated with ``spread = 0``): one seed's noise in the gap.
So ``a > b + spread`` says "a exceeds b by more than the seed-to-seed spread of their gap",
``a <= b + spread`` says "a is not above b by more than that spread", and ``a <= b`` is
decided on the means alone. ``and``/``or``/``not`` combine the comparisons' verdicts.
Beside the verdict each claim records in how many seeds its rule held on that seed alone.

This module also formats measured numbers (``mean ± std (n seeds)``) and builds the results
table, for the CLI, the run summary and the report alike.
"""

from __future__ import annotations

import ast
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

_FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "log": math.log,
    "log10": math.log10,
}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_COMPARE: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}
SPREAD = "spread"


class RuleError(ValueError):
    """A rule that is not a comparison over the claim's measured names."""


def parse_rule(rule: str, names: Sequence[str]) -> ast.Expression:
    """Parse ``rule`` and check it uses only the allowed syntax and the given names."""
    try:
        tree = ast.parse(rule, mode="eval")
    except SyntaxError as err:
        raise RuleError(f"rule {rule!r} is not an expression: {err.msg}") from None
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BinOp,
        ast.Compare,
        ast.Call,
        ast.Name,
        ast.Load,
        ast.Constant,
        ast.Subscript,
        *_BINOPS,
        *_COMPARE,
    )
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise RuleError(f"rule {rule!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
        ):
            raise RuleError(f"rule {rule!r}: only {', '.join(_FUNCTIONS)} may be called")
        if (
            isinstance(node, ast.Name)
            and node.id not in names
            and node.id not in _FUNCTIONS
            and node.id != SPREAD
        ):
            raise RuleError(f"rule {rule!r} names {node.id!r}, which is not measured")
    return tree


def _value(node: ast.AST, env: dict[str, Any]) -> Any:
    """A numeric sub-expression of a rule on one seed's numbers."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_value(node.left, env), _value(node.right, env))
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](*(_value(a, env) for a in node.args))  # type: ignore[attr-defined]
    if isinstance(node, ast.Subscript):
        return _value(node.value, env)[_value(node.slice, env)]
    raise RuleError(f"{ast.unparse(node)} is not a number")


def _pairs(node: ast.Compare) -> list[tuple[ast.AST, ast.cmpop, ast.AST]]:
    """``a < b < c`` as the pairs (a, <, b), (b, <, c)."""
    sides = [node.left, *node.comparators]
    return [(sides[i], op, sides[i + 1]) for i, op in enumerate(node.ops)]


def _verdict(node: ast.AST, seeds: list[dict[str, Any]]) -> bool:
    """The rule's verdict on the seeds' numbers (the module docstring's aggregate rule)."""
    if isinstance(node, ast.Expression):
        return _verdict(node.body, seeds)
    if isinstance(node, ast.BoolOp):
        results = [_verdict(v, seeds) for v in node.values]
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _verdict(node.operand, seeds)
    if isinstance(node, ast.Compare):
        return all(_compare(left, op, right, seeds) for left, op, right in _pairs(node))
    raise RuleError(f"{ast.unparse(node)} is not a comparison")


def _compare(left: ast.AST, op: ast.cmpop, right: ast.AST, seeds: list[dict[str, Any]]) -> bool:
    bare = [dict(m, **{SPREAD: 0.0}) for m in seeds]
    gaps = [float(_value(left, m)) - float(_value(right, m)) for m in bare]
    spread = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
    env = [dict(m, **{SPREAD: spread}) for m in seeds]
    lhs = statistics.fmean(float(_value(left, m)) for m in env)
    rhs = statistics.fmean(float(_value(right, m)) for m in env)
    return _COMPARE[type(op)](lhs, rhs)


def holds(rule: str, measured: dict[str, Any] | list[dict[str, Any]]) -> bool:
    """The verdict of ``rule`` on one seed's measured numbers, or on several seeds'."""
    seeds = measured if isinstance(measured, list) else [measured]
    tree = parse_rule(rule, list(seeds[0]))
    return _verdict(tree, seeds)


# -- aggregation over seeds ----------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _mean_std(values: list[Any]) -> tuple[Any, Any]:
    """Mean and std (ddof 1) of numbers, element-wise for equal-length number lists; values
    that are not numbers are kept when equal in every seed, else listed per seed."""
    first = values[0]
    if all(_is_number(v) for v in values):
        if all(v == first for v in values):
            return first, 0.0
        floats = [float(v) for v in values]
        return statistics.fmean(floats), statistics.stdev(floats)
    if (
        all(isinstance(v, list) and len(v) == len(first) for v in values)
        and first
        and all(_is_number(x) for v in values for x in v)
    ):
        pairs = [_mean_std(list(col)) for col in zip(*values, strict=True)]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    if all(v == first for v in values):
        return first, None
    return list(values), None


def aggregate_claim(claims: list[dict[str, Any]]) -> dict[str, Any]:
    """One claim over seeds: ``measured`` holds the means, ``std`` and ``per_seed`` the
    spread, ``holds`` the aggregate verdict, ``held_in`` the seeds whose own verdict held."""
    first = claims[0]
    keys = list(first["measured"])
    for c in claims[1:]:
        if list(c["measured"]) != keys:
            raise ValueError(f"claim {first['id']!r} measured different numbers in two seeds")
    measured, std, per_seed = {}, {}, {}
    for k in keys:
        values = [c["measured"][k] for c in claims]
        measured[k], spread = _mean_std(values)
        if spread is not None:
            std[k] = spread
            per_seed[k] = values
    out = {
        "id": first["id"],
        "statement": first["statement"],
        "paper": first["paper"],
        "rule": first.get("rule"),
        "measured": measured,
        "std": std,
        "per_seed": per_seed,
        "n_seeds": len(claims),
        "asserted": first.get("rule") is not None,
    }
    if out["asserted"]:
        out["holds"] = holds(first["rule"], [c["measured"] for c in claims])
        out["held_in"] = sum(bool(c["holds"]) for c in claims)
    else:
        out["holds"] = None
        out["held_in"] = None
    return out


def aggregate_results(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """One results.json from the results of the same experiment run with several seeds.

    ``runtime_s`` is the seeds' runtimes added up, as when they run one after another; seeds
    run side by side (``--jobs``) get the wall-clock instead, from ``run_experiment``.
    """
    first = per_seed[0]
    ids = [c["id"] for c in first["claims"]]
    for res in per_seed[1:]:
        if [c["id"] for c in res["claims"]] != ids:
            raise ValueError("the seeds recorded different claims; cannot aggregate them")
    claims = [aggregate_claim([res["claims"][i] for res in per_seed]) for i in range(len(ids))]
    seeds = [res["seeds"][0] for res in per_seed]
    notes = list(dict.fromkeys(n for res in per_seed for n in res.get("notes", [])))
    if len(per_seed) > 1 and first.get("plots"):
        notes.append(f"Plots, samples and the summary show seed {seeds[0]}.")
    return {
        **first,
        "seeds": seeds,
        "claims": claims,
        "notes": notes,
        "runtime_s": round(sum(r["runtime_s"] for r in per_seed), 1),
        "seed_runtimes_s": [r["runtime_s"] for r in per_seed],
    }


# -- how verdicts and numbers are shown ----------------------------------------------------


def verdict(claim: dict[str, Any]) -> str:
    """``holds`` | ``does not hold`` | ``reported`` (a number shown with no verdict)."""
    if not claim.get("asserted", True) or claim.get("holds") is None:
        return "reported"
    return "holds" if claim["holds"] else "does not hold"


def fmt(value: Any) -> str:
    """A measured number, rounded to 4 significant digits; long lists shortened."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(fmt(v) for v in value[:4])
        return f"[{shown}{', …' if len(value) > 4 else ''}]"
    return str(value)


def fmt_measured(claim: dict[str, Any]) -> str:
    """``name = mean ± std`` for each measured number (``mean`` alone where seeds agree)."""
    std = claim.get("std", {})
    parts = []
    for k, v in claim["measured"].items():
        s = std.get(k)
        if _is_number(s) and s > 0:
            parts.append(f"{k} = {fmt(v)} ± {fmt(float(s))}")
        else:
            parts.append(f"{k} = {fmt(v)}")
    return "; ".join(parts)


def seeds_text(claim: dict[str, Any]) -> str:
    """``2/3 seeds`` for an asserted claim over several seeds, else empty."""
    n = claim.get("n_seeds", 1)
    if n > 1 and claim.get("held_in") is not None:
        return f"{claim['held_in']}/{n} seeds"
    return ""


def fmt_runtime(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def busy_note(results: dict[str, Any]) -> str:
    """``" (busy: load L on C CPUs)"`` when other jobs loaded the machine during the run,
    else "". The run's own load is its processes times their threads; the 5-minute load
    average at the end stands for the run (the 15-minute one would still count jobs that
    ended before the run began), beyond the run's own by more than one is busy."""
    load = results.get("load_avg") or []
    if len(load) < 3:
        return ""
    env = results.get("env", {})
    own = max(1, int(results.get("jobs", 1))) * max(1, int(env.get("threads", 1)))
    if load[1] <= own + 1:
        return ""
    return f" (busy: load {load[1]:.1f} on {env.get('cpus', '?')} CPUs)"


def markdown_table(results: list[dict[str, Any]], *, with_paper: bool = True) -> str:
    """The results table of the README and the paper READMEs."""
    cols = ["experiment", "claim", "paper's number", "ours", "verdict", "seeds", "runtime"]
    if with_paper:
        cols.insert(0, "paper")
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for res in results:
        n = len(res.get("seeds", [0]))
        for c in res["claims"]:
            v = verdict(c)
            cells = [
                res["experiment"],
                c["statement"],
                c["paper"],
                fmt_measured(c) + (f" ({n} seeds)" if n > 1 else ""),
                f"**{v}**" if v == "does not hold" else v,
                seeds_text(c) or str(n),
                fmt_runtime(res["runtime_s"]) + busy_note(res),
            ]
            if with_paper:
                cells.insert(0, f"`{res['paper']}`")
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if len(rows) == 2:
        rows.append("| " + " | ".join(["-"] * len(cols)) + " |")
    return "\n".join(rows)


def summary_markdown(results: dict[str, Any]) -> str:
    """A run's summary.md: where and how it ran, and its claims."""
    lines = [
        f"# {results['paper']}:{results['experiment']} ({results['preset']})",
        "",
        f"Runtime {fmt_runtime(results['runtime_s'])} on {results['env']['device']}, "
        f"torch {results['env']['torch']}, seeds {results['seeds']}, "
        f"commit {results['env']['commit']}.",
        "",
        markdown_table([results], with_paper=False),
    ]
    for note in results.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"
