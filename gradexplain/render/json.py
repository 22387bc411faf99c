"""The ``--json`` document, schema ``gradexplain/1`` (stable keys; more may be added)."""
from __future__ import annotations

from typing import Any

import orjson

from ..check import CHECK_SCHEMA, CheckResult, ProblemResult
from ..report import SCHEMA, Report, document_budget, to_plain

SAVED_VALUE_MAX = 64  # saved tensors larger than this are described by shape only


def _saved(saved: dict[str, Any]) -> dict[str, Any]:
    import torch  # heavy

    out: dict[str, Any] = {}
    for k, v in saved.items():
        if isinstance(v, torch.Tensor):
            out[k] = {"shape": list(v.shape), "value": to_plain(v) if v.numel() <= SAVED_VALUE_MAX else None}
        else:
            out[k] = to_plain(v)
    return out


def optional_sections(report: Report) -> dict[str, Any]:
    """The Report's optional sections by JSON key, in document order (each left out when empty)."""
    return {"dropout": report.dropout, "hessian": report.hessian, "hessian_info": report.hessian_info,
            "hvp": report.hvp, "steps": report.steps, "training": report.training, "call": report.call,
            "grad_changes": report.grad_changes}


def report_dict(report: Report) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": SCHEMA, "expr": report.expr}
    doc["inputs"] = {n: {"shape": i.shape, "value": to_plain(i.value), "requires_grad": i.requires_grad}
                     for n, i in report.inputs.items()}
    doc["forward"] = [to_plain(f) for f in report.forward]
    doc["output"] = to_plain(report.output)
    doc["grad_output"] = to_plain(report.grad_output)
    doc["graph"] = [dict(to_plain({k: v for k, v in vars(g).items() if k != "saved"}), saved=_saved(g.saved))
                    for g in report.graph]
    doc["grads"] = {n: to_plain(g) for n, g in report.grads.items()}
    doc["jacobian"] = to_plain(report.jacobian) if report.jacobian is not None else None
    doc["agree"] = report.agree
    doc["notes"] = report.notes
    doc["expect"] = [to_plain(e) for e in report.expect]
    doc["dtype"], doc["tol"] = report.dtype, report.tol
    for key, value in optional_sections(report).items():
        if value:
            doc[key] = to_plain(value)
    return doc


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(doc: Any) -> str:
    """JSON text of a document whose big arrays are numpy (see report.to_plain): orjson (a
    dependency) writes 10^6 floats in ~40 ms where the json module takes seconds."""
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=_default).decode()


def render(report: Report) -> str:
    with document_budget():
        return dumps(report_dict(report))


def check_dict(result: CheckResult) -> dict[str, Any]:
    """The ``gradexplain-check/1`` document (contract), plus ``error``/``warnings`` where there are any."""
    def problem(p: ProblemResult) -> dict[str, Any]:
        error = p.error
        try:
            with document_budget():  # each problem's document is bounded on its own
                result = report_dict(p.result) if p.result is not None else None
        except Exception as e:  # noqa: BLE001 - one problem's document must never lose the whole report
            result, error = None, error or f"could not write this problem's result: {type(e).__name__}: {e}"
        doc = {"name": p.name, "passed": p.passed, "failures": p.failures, "result": result}
        if error:
            doc["error"] = error
        if p.warnings:
            doc["warnings"] = p.warnings
        return doc

    return {"schema": CHECK_SCHEMA, "file": result.file, "passed": result.passed, "failed": result.failed,
            "problems": [problem(p) for p in result.problems]}


def render_check(result: CheckResult) -> str:
    return dumps(check_dict(result))
