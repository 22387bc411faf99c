"""The ``--json`` document, schema ``gradexplain/1`` (stable keys; more may be added)."""
from __future__ import annotations

import json
from typing import Any

from ..report import SCHEMA, Report, document_budget, to_plain

SAVED_VALUE_MAX = 64  # saved tensors larger than this are described by shape only


def _saved(saved: dict[str, Any]) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for k, v in saved.items():
        if isinstance(v, torch.Tensor):
            out[k] = {"shape": list(v.shape), "value": to_plain(v) if v.numel() <= SAVED_VALUE_MAX else None}
        else:
            out[k] = to_plain(v)
    return out


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
    for key, value in report.extra.items():
        doc[key] = to_plain(value)
    return doc


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(doc: Any) -> str:
    """JSON text of a document whose big arrays are numpy (see report.to_plain): orjson writes
    10^6 floats in ~40 ms where the json module takes seconds; json is the fallback."""
    try:
        import orjson
    except ImportError:
        return json.dumps(doc, allow_nan=False, default=_default)
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=_default).decode()


def render(report: Report) -> str:
    with document_budget():
        return dumps(report_dict(report))
