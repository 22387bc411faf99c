"""EXPR text → IR, safely.

``ast.parse`` does the tokenising; a whitelist walker accepts only the node types, names,
functions, methods and keyword arguments of the contract and builds :mod:`gradexplain.ir`
nodes.  Nothing of the user's text is ever executed.  Every rejection is a
:class:`~gradexplain.errors.ParseError` with the column of the offending piece, so the CLI can
put a caret under it.
"""
from __future__ import annotations

import ast
import math
from fractions import Fraction
from typing import Any

from .binding import bind
from .errors import LimitError, NameInValue, ParseError
from .i18n import Msg, N_
from .ir import Call, Const, Input, Node, Program, Slice, Slot, Statement
from .limits import DEFAULT, Limits
from .ops import REGISTRY, VALUE_ONLY, OpSpec, Outputs, resolve

FUNCTION_PREFIXES = ("torch", "F", "torch.nn.functional", "nn.functional", "functional")
# namespaces where torch keeps only some functions: accepted for the ops torch has there
NAMESPACES = {"torch.linalg": "linalg", "linalg": "linalg", "torch.special": "special", "special": "special"}
# Ops whose torch result shares storage with their first argument: an in-place change to either
# changes both.  (Advanced indexing copies; it is counted here too, which only errs on refusing.)
VIEW_OPS = {"index", "t", "transpose", "reshape", "view", "unsqueeze", "squeeze", "expand_as"}
BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.MatMult: "matmul"}
COMPARE = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq", ast.NotEq: "ne"}
MASK_BINOPS = {ast.BitAnd: "logical_and", ast.BitOr: "logical_or", ast.BitXor: "logical_xor"}
# params that take a string ('mean', 'tanh', 'fro', 'reflect'), validated per op
STRING_PARAMS = {"reduction", "approximate", "p", "ord", "mode"}
NAMED_CONSTANTS = {"inf": float("inf"), "nan": float("nan")}
# torch.pi, math.e, ...: module constants PyTorch users write
MODULE_CONSTANTS = {f"{m}.{n}": v for m in ("torch", "math", "np", "numpy")
                    for n, v in (("pi", math.pi), ("e", math.e), ("inf", math.inf), ("nan", math.nan))}
ATTRIBUTE_OPS = {"T": "t"}
# .mT, .H, .mH of a real tensor: its last two dims swapped (torch records TransposeBackward0)
MATRIX_ATTRIBUTES = ("mT", "H", "mH")
SIZE_ATTRIBUTES = {"ndim": "dim", "shape": "size"}  # x.ndim is x.dim(), x.shape is x.size()
PYTHON_BUILTINS = ("len", "range")
MASK_OPS = {*COMPARE.values(), *MASK_BINOPS.values(), "logical_not"}
# ... and every param whose default is a string (mode='bilinear', einsum's equation)
STRING_PARAMS |= {name for spec in REGISTRY.values() for name, default in spec.params if isinstance(default, str)}


class Several:
    """A call that returns several tensors (``x.max(0)``), before one output is picked: not an IR node.

    ``.values``, ``[0]`` or tuple unpacking turns it into the per-output op its :class:`Outputs` names."""

    def __init__(self, spec: OpSpec, call: Call):
        self.spec, self.call = spec, call
        assert spec.outputs is not None
        self.outputs: Outputs = spec.outputs

    def part(self, i: int) -> Call:
        op, extra = self.outputs.part(i)
        own = REGISTRY[op].param_names
        params = {k: v for k, v in self.call.params.items() if k in own}
        return Call(op, self.call.args, {**params, **extra}, src=self.call.src)

    def describe(self) -> str:
        names = self.outputs.names
        if names:
            return Msg("{op}() returns several tensors ({names})", op=self.spec.name, names=", ".join(names))
        return Msg("{op}() returns several tensors", op=self.spec.name)


# Python's own syntax messages common in EXPR, said in the reader's language (others stay as Python wrote them)
PYTHON_SYNTAX = (N_("invalid syntax"), N_("invalid syntax. Perhaps you forgot a comma?"), N_("unclosed '('"),
                 N_("'[' was never closed"), N_("unmatched ')'"), N_("unmatched ']'"),
                 N_("invalid decimal literal"), N_("unexpected indent"),
                 N_("cannot assign to function call here. Maybe you meant '==' instead of '='?"))


def _ok_char(ch: str) -> bool:
    return ch in "\t\n\r" or 32 <= ord(ch) < 127


class _Parser:
    def __init__(self, text: str, limits: Limits, allow_names: bool = True, rule: bool = False):
        self.rule = rule  # a registry rule template: its variables (cond, g, out) stand for anything
        self.text = text
        self.limits = limits
        self.allow_names = allow_names
        self.env: dict[str, Node] = {}
        self.inputs: dict[str, Input] = {}
        self.dropouts = 0
        self.line_starts: list[int] | None = None  # offsets of line starts, for src()

    # -------------------------------------------------------------- errors

    def error(self, message: str, node: ast.AST | None = None, cls: type = ParseError) -> ParseError:
        col = getattr(node, "col_offset", None)
        line = getattr(node, "lineno", 1)
        if isinstance(node, ast.Attribute) and node.end_col_offset is not None:  # caret under .name, not the receiver
            col, line = node.end_col_offset - len(node.attr), node.end_lineno or line
        return cls(message, col=col, line=line, source=self.text)

    def src(self, node: ast.AST) -> str:
        """The piece of EXPR a node came from.  ``ast.get_source_segment`` re-splits the whole text
        on every call (quadratic on long formulas); EXPR is ASCII, so byte columns are characters."""
        if self.line_starts is None:
            self.line_starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]
        try:
            start = self.line_starts[node.lineno - 1] + node.col_offset
            end = self.line_starts[node.end_lineno - 1] + node.end_col_offset
        except (AttributeError, TypeError, IndexError):
            return ""
        return self.text[start:end]

    # -------------------------------------------------------------- statements

    def program(self) -> Program:
        tree = _ast_parse(self.text, self.limits)
        if not tree.body:
            raise ParseError(Msg("empty expression"), col=0, source=self.text)
        if len(tree.body) > self.limits.max_statements:
            raise LimitError(Msg("{n} statements exceed the limit of {limit} (raise it with --max-statements)",
                                 n=len(tree.body), limit=self.limits.max_statements))
        statements: list[Statement] = []
        for i, stmt in enumerate(tree.body):
            last = i == len(tree.body) - 1
            statements.extend(self.statement(stmt, last, len(statements)))
        if isinstance(tree.body[-1], ast.Expr) and any(s.name == "out" for s in statements[:-1]):
            # the user's own `out` is never shadowed: the unnamed last expression is named like the others
            statements[-1].name = f"expr{len(statements)}"
        return Program(statements=statements, output=len(statements) - 1, inputs=list(self.inputs), text=self.text)

    def statement(self, stmt: ast.stmt, last: bool, index: int) -> list[Statement]:
        if isinstance(stmt, ast.Expr):
            node = self.expr(stmt.value)
            return [Statement("out" if last else f"expr{index + 1}", node, self.src(stmt.value))]
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1:
                raise self.error(Msg("chained assignment (a = b = ...) is not supported"), stmt)
            if isinstance(stmt.targets[0], (ast.Tuple, ast.List)):
                return self.unpack(stmt.targets[0], stmt)
            return [self.assign(stmt.targets[0], self.expr(stmt.value), stmt)]
        if isinstance(stmt, ast.AugAssign):
            op = BINOPS.get(type(stmt.op))
            if op is None:
                raise self.error(Msg("augmented operator {op} is not allowed", op=type(stmt.op).__name__), stmt)
            current = self.expr(stmt.target)
            if isinstance(stmt.target, ast.Name):
                self.check_unshared(stmt.target.id, current, stmt)
            value = self.expr(stmt.value)
            combined = Call(op, (current, value), src=self.src(stmt), inplace=isinstance(stmt.target, ast.Name))
            return [self.assign(stmt.target, combined, stmt)]
        raise self.error(Msg("{kind} statements are not allowed (only expressions and assignments)",
                             kind=type(stmt).__name__), stmt)

    def unpack(self, target: ast.Tuple | ast.List, stmt: ast.Assign) -> list[Statement]:
        """``v, i = x.max(0)``: one statement per output of a call that returns several tensors."""
        value = self.maybe_several(stmt.value, 0)
        if not isinstance(value, Several):
            raise self.error(Msg("only a call that returns several tensors (max(x, dim), sort, split) can be unpacked"),
                             stmt.value)
        count = value.outputs.count
        if count is not None and count != len(target.elts):
            raise self.error(Msg("{what}: {count} values to unpack into {names} names", what=value.describe(),
                                 count=count, names=len(target.elts)), target)
        statements = []
        for i, elt in enumerate(target.elts):
            if not isinstance(elt, ast.Name):
                raise self.error(Msg("unpack into plain names: v, i = x.max(0)"), elt)
            name = self.check_name(elt.id, elt)
            if name in FUNCTION_PREFIXES:
                raise self.error(Msg("cannot assign to {name!r}", name=name), elt)
            node = value.part(i)
            self.env[name] = node
            statements.append(Statement(name, node, f"{self.src(stmt.value)}[{i}]"))
        return statements

    def assign(self, target: ast.expr, node: Node, stmt: ast.stmt) -> Statement:
        if isinstance(target, ast.Name):
            name = self.check_name(target.id, target)
            if name in FUNCTION_PREFIXES:
                raise self.error(Msg("cannot assign to {name!r}", name=name), target)
            self.env[name] = node
            plain = isinstance(stmt, ast.Assign)  # y = x*2 → "x*2"; y += x keeps the whole statement
            return Statement(name, node, self.src(stmt.value) if plain else self.src(stmt))
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            name = self.check_name(target.value.id, target.value)
            if name in FUNCTION_PREFIXES or name in NAMED_CONSTANTS:
                raise self.error(Msg("cannot assign into {name!r}", name=name), target)
            base = self.name(target.value)  # a statement's tensor, or an input (PyTorch refuses it unless --const)
            self.check_unshared(name, base, stmt)
            new = Call("setitem", (base, node), {"key": self.index_key(target.slice)},
                       src=self.src(stmt), inplace=True)
            self.env[name] = new
            return Statement(name, new, self.src(stmt))
        raise self.error(Msg("only NAME = ... and NAME[index] = ... assignments are allowed"), target)

    def check_unshared(self, name: str, node: Node, stmt: ast.stmt) -> None:
        """An in-place change to a tensor that another name shares (``z = y``) or views (``v = y[0:2]``)
        changes both in PyTorch.  The IR gives each name its own value, so such a program would get
        a false verdict: it is refused, with the copy that makes it well defined."""
        def root(n: Node) -> Node:
            while isinstance(n, Call) and n.op in VIEW_OPS and n.args:
                n = n.args[0]
            return n

        target = root(node)
        bound = dict(self.env, **{k: v for k, v in self.inputs.items() if k not in self.env})
        for other, value in bound.items():
            if other == name or not isinstance(value, Node):
                continue
            if value is node or root(value) is target:
                if value is node:
                    said = Msg("this statement changes {name} in place, and {name} is the same tensor as {other}: "
                               "PyTorch would change {other} too, which gradexplain does not model — copy where the "
                               "tensor is shared (z = y*1 instead of z = y, v = y[0:2]*1 instead of v = y[0:2])",
                               name=name, other=other)
                else:
                    said = Msg("this statement changes {name} in place, and {name} shares storage with (is a view "
                               "of, or views) {other}: PyTorch would change {other} too, which gradexplain does not "
                               "model — copy where the tensor is shared (z = y*1 instead of z = y, v = y[0:2]*1 "
                               "instead of v = y[0:2])", name=name, other=other)
                raise self.error(said, stmt, ParseError)

    def check_name(self, name: str, node: ast.AST) -> str:
        if name.startswith("_"):
            raise self.error(Msg("names starting with '_' are not allowed: {name!r}", name=name), node)
        return name

    # -------------------------------------------------------------- expressions

    def expr(self, node: ast.expr, depth: int = 0, allow_compare: bool = False) -> Node:
        if depth > self.limits.max_depth:
            raise self.error(Msg("expression nested deeper than {limit} levels (raise it with --max-depth)",
                                 limit=self.limits.max_depth), node, LimitError)
        d = depth + 1
        if isinstance(node, ast.Constant):
            return Const(self.number(node))
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp) and type(node.op) in MASK_BINOPS:
            if not allow_compare:
                raise self.error(Msg("& | ^ combine masks (comparisons) in where(cond, a, b) and masked_fill"), node)
            left, right = self.expr(node.left, d, True), self.expr(node.right, d, True)
            return Call(MASK_BINOPS[type(node.op)], (left, right), src=self.src(node))
        if isinstance(node, ast.BinOp):
            op = BINOPS.get(type(node.op))
            if op is None:
                raise self.error(Msg("operator {op} is not allowed", op=type(node.op).__name__), node)
            left, right = self.expr(node.left, d), self.expr(node.right, d)
            return self.fold(op, left, right, node) or Call(op, (left, right), src=self.src(node))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand, d)
            if isinstance(node.op, ast.USub):
                inner = self.expr(node.operand, d)
                if isinstance(inner, Const):
                    return Const(-inner.value)
                return Call("neg", (inner,), src=self.src(node))
            if isinstance(node.op, (ast.Invert, ast.Not)) and allow_compare:
                return Call("logical_not", (self.expr(node.operand, d, True),), src=self.src(node))
            raise self.error(Msg("unary {op} is not allowed", op=type(node.op).__name__), node)
        if isinstance(node, ast.Call):
            return self.single(self.call(node, d), node)
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted in MODULE_CONSTANTS and dotted.split(".")[0] not in self.env:
                return Const(MODULE_CONSTANTS[dotted])
            base = self.maybe_several(node.value, d)
            if isinstance(base, Several):
                if node.attr not in base.outputs.names:
                    raise self.error(Msg("{what}: .{attr} is not one of them", what=base.describe(), attr=node.attr),
                                     node)
                return base.part(base.outputs.names.index(node.attr))
            if node.attr in SIZE_ATTRIBUTES:
                return Call(SIZE_ATTRIBUTES[node.attr], (base,), src=self.src(node))
            if node.attr in ATTRIBUTE_OPS:
                return Call(ATTRIBUTE_OPS[node.attr], (base,), src=self.src(node))
            if node.attr in MATRIX_ATTRIBUTES:
                return Call("transpose", (base,), {"dim0": -2, "dim1": -1}, src=self.src(node))
            raise self.error(Msg("attribute .{attr} is not allowed (allowed: .T and the listed methods)",
                                 attr=node.attr), node)
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Attribute) and node.value.attr == "shape":  # x.shape[0]: x.size(0)
                dim = self.int_literal(node.slice)
                return Call("size", (self.expr(node.value.value, d),), {"dim": dim}, src=self.src(node))
            base = self.maybe_several(node.value, d)
            if isinstance(base, Several):
                key = self.index_key(node.slice)
                if len(key) != 1 or not isinstance(key[0], int):
                    raise self.error(Msg("{what}: pick one with an integer, [0]", what=base.describe()), node)
                count = base.outputs.count
                i = key[0] + count if count is not None and key[0] < 0 else key[0]
                if i < 0 or (count is not None and i >= count):
                    raise self.error(Msg("{what}: index {index} is out of range", what=base.describe(),
                                         index=key[0]), node)
                return base.part(i)
            pending: list[Node] = []
            key = self.index_key(node.slice, pending, d)
            return Call("index", (base, *pending), {"key": key}, src=self.src(node))
        if isinstance(node, ast.Compare):
            if not allow_compare:
                raise self.error(Msg("comparisons are only allowed as the condition of where(cond, a, b)"), node)
            if len(node.ops) != 1 or type(node.ops[0]) not in COMPARE:
                raise self.error(Msg("use one comparison < <= > >= == != in where's condition"), node)
            left, right = self.expr(node.left, d), self.expr(node.comparators[0], d)
            return Call(COMPARE[type(node.ops[0])], (left, right), src=self.src(node))
        if isinstance(node, (ast.List, ast.Tuple)):
            if not self.allow_names:  # a value: [[1, 2], [3, 4]]
                return Call("tensor", (), {"data": self.nested(node)}, src=self.src(node))
            if isinstance(node, ast.Tuple) and node.elts:  # index tensors: index_put(z, (i, j), v)
                return Call("tuple", tuple(self.expr(e, d, allow_compare=True) for e in node.elts), src=self.src(node))
            raise self.error(Msg("a list is only allowed inside tensor([...]), stack([...]) or cat([...])"), node)
        raise self.error(Msg("{kind} is not allowed in an expression", kind=type(node).__name__), node)

    def maybe_several(self, node: ast.expr, depth: int) -> Node | Several:
        """An expression that may be a call returning several tensors (the receiver of ``.values``, ``[0]``)."""
        if isinstance(node, ast.Call):
            return self.call(node, depth + 1)
        return self.expr(node, depth)

    def single(self, value: Node | Several, node: ast.AST) -> Node:
        if isinstance(value, Several):
            names = value.outputs.names
            pick = Msg(".{name} or [0]", name=names[0]) if names else Msg("[0], [1], ... or unpack them (a, b = ...)")
            raise self.error(Msg("{what}: pick one with {pick}", what=value.describe(), pick=pick), node)
        return value

    def number(self, node: ast.Constant) -> int | float:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(Msg("{kind} constant {value!r} is not allowed here (numbers only)", kind=type(v).__name__,
                                 value=v), node)
        return v

    def name(self, node: ast.Name) -> Node:
        name = self.check_name(node.id, node)
        if name in self.env:
            return self.env[name]
        if name in NAMED_CONSTANTS:
            return Const(NAMED_CONSTANTS[name])
        if name in FUNCTION_PREFIXES:
            raise self.error(Msg("{name!r} on its own is not a value; call a function: {name}.dot(...)", name=name),
                             node)
        if not self.allow_names:
            raise self.error(Msg("a value cannot refer to the name {name!r}", name=name), node, NameInValue)
        if name not in self.inputs:
            self.inputs[name] = Input(name)
        return self.inputs[name]

    def fold(self, op: str, left: Node, right: Node, node: ast.AST) -> Const | None:
        """Arithmetic on two exact constants, as Python would do it before torch runs."""
        if not (isinstance(left, Const) and isinstance(right, Const)):
            return None
        a, b = left.value, right.value
        if not all(isinstance(v, (int, Fraction)) for v in (a, b)):
            return None
        if op == "pow":
            if not isinstance(b, int) or (b < 0 and a == 0):
                return None
            if abs(b) > self.limits.max_exponent:
                raise self.error(Msg("exponent {b} of a constant exceeds the limit of {limit} (raise it with "
                                     "--max-exponent)", b=b, limit=self.limits.max_exponent), node, LimitError)
            if a not in (0, 1, -1) and abs(b) * max(1, abs(int(a)).bit_length()) > 64 * self.limits.max_exponent:
                raise self.error(Msg("constant power too large"), node, LimitError)
            value = Fraction(a) ** b
        elif op == "div":
            if b == 0:
                return None
            value = Fraction(a) / Fraction(b)
        elif op == "matmul":
            return None
        else:
            value = {"add": a + b, "sub": a - b, "mul": a * b}[op]
        value = Fraction(value)
        return Const(value.numerator if value.denominator == 1 else value)

    # -------------------------------------------------------------- calls

    def function_name(self, func: ast.expr) -> str | None:
        """``dot``, ``torch.dot``, ``F.relu``, ``torch.nn.functional.relu`` → the op name."""
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            prefix = _dotted(func.value)
            if prefix in FUNCTION_PREFIXES:
                return func.attr
            if prefix in NAMESPACES and _in_namespace(NAMESPACES[prefix], func.attr):
                return func.attr
        return None

    def call(self, node: ast.Call, depth: int) -> Node | Several:
        if isinstance(node.func, ast.Name) and node.func.id in PYTHON_BUILTINS and node.func.id not in self.env:
            return self.builtin(node, depth)
        fname = self.function_name(node.func)
        if fname is not None:
            spec = resolve(fname)
            if spec is None:
                raise self.error(Msg("unknown function {name!r} (see `gradexplain ops`)", name=fname), node.func)
            if spec.name in VALUE_ONLY and self.allow_names:
                raise self.error(Msg("{name}() makes an input: give it as NAME={name}(...) with --seed", name=fname),
                                 node.func)
            return _called_t(self.bind(spec, node, [], depth))
        if isinstance(node.func, ast.Attribute) and _dotted(node.func.value) in NAMESPACES:
            raise self.error(Msg("unknown function {name!r} (torch has no {attr} there, or see `gradexplain ops`)",
                                 name=_dotted(node.func), attr=node.func.attr), node.func)
        if isinstance(node.func, ast.Attribute):
            method = node.func.attr
            spec = resolve(method)
            if method == "t":
                spec = REGISTRY["t"]
            if spec is None or spec.variadic or spec.constructor or not spec.tensor_args:
                raise self.error(Msg("method .{method}() is not allowed (see `gradexplain ops`)", method=method),
                                 node.func)
            receiver = self.expr(node.func.value, depth)
            return _called_t(self.bind(spec, node, [receiver], depth))
        raise self.error(Msg("only functions and methods of the contract can be called"), node.func)

    def builtin(self, node: ast.Call, depth: int) -> Node:
        """Python's ``len(x)`` (x.size(0)) and ``range(...)`` (an int64 index tensor, as ``torch.arange``)."""
        name = node.func.id  # type: ignore[attr-defined]
        if node.keywords:
            raise self.error(Msg("{name}() takes no keyword arguments", name=name), node)
        if name == "len":
            if len(node.args) != 1:
                raise self.error(Msg("len() takes exactly one argument"), node)
            return Call("size", (self.expr(node.args[0], depth),), {"dim": 0}, src=self.src(node))
        if not 1 <= len(node.args) <= 3:
            raise self.error(Msg("range expected 1 to 3 arguments"), node)
        bounds = [self.static(a, "range") for a in node.args]
        if not all(isinstance(b, (int, _Computed)) for b in bounds):
            raise self.error(Msg("range() takes integers"), node)
        names = ("end",) if len(bounds) == 1 else ("start", "end", "step")
        return with_slots("range", [], dict(zip(names, bounds)), self.src(node))

    def bind(self, spec: OpSpec, node: ast.Call, leading: list[Node], depth: int) -> Node | Several:
        """Match positional and keyword arguments to the op's tensor args and static params
        (:func:`gradexplain.binding.bind`), then what only EXPR needs: dropout seeds by position,
        literal checks, a comparison as where's condition."""
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.error(Msg("*args is not allowed"), node)
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error(Msg("**kwargs is not allowed"), kw.value)
        args, params = bind(spec, list(node.args), [(kw.arg, kw.value) for kw in node.keywords], leading,
                            _AstArguments(self, depth), node)
        if "seed" in spec.param_names and "seed" not in params:  # dropout and its channel variants
            params["seed"] = self.dropouts
            self.dropouts += 1
        self.validate(spec, params, node)
        if spec.name == "where" and not self.rule and not (isinstance(args[0], Call) and args[0].op in MASK_OPS):
            raise self.error(Msg("where's condition must be a comparison such as x > 0"),
                             node.args[0] if node.args else node)
        call = with_slots(spec.name, args, params, self.src(node))
        if spec.infix and isinstance(call, Call):
            call.function = True
        if spec.outputs is not None and spec.outputs.applies(params, len(args)):
            return Several(spec, call)
        return call

    def validate(self, spec: OpSpec, params: dict[str, Any], node: ast.AST) -> None:
        red = params.get("reduction")
        if red is not None and red not in spec.reductions:
            allowed = Msg("{items} or {last!r}", items=", ".join(repr(r) for r in spec.reductions[:-1]),
                          last=spec.reductions[-1])
            raise self.error(Msg("reduction must be {allowed}, not {value!r}", allowed=allowed, value=red), node)
        for key in ("keepdim", "training"):
            if key in params and not isinstance(params[key], bool):
                raise self.error(Msg("{key} must be True or False", key=key), node)
        dim = params.get("dim")
        if dim is not None and not (isinstance(dim, int) or (isinstance(dim, tuple) and all(isinstance(d, int) for d in dim))):
            raise self.error(Msg("dim must be an integer or a tuple of integers"), node)
        if "p" in params and not isinstance(params["p"], (int, float)) and params["p"] not in spec.string_values:
            raise self.error(Msg("p must be a number or one of {choices}",
                                 choices=", ".join(map(repr, spec.string_values))) if spec.string_values else
                             Msg("p must be a number"), node)
        for key in ("approximate", "ord"):
            if isinstance(params.get(key), str) and params[key] not in spec.string_values:
                raise self.error(Msg("{op}(): {key} must be one of {choices}", op=spec.name, key=key,
                                     choices=", ".join(map(repr, spec.string_values))), node)
        if spec.name == "pad" and params.get("mode", "constant") not in ("constant", "reflect", "replicate", "circular"):
            raise self.error(Msg("pad mode must be 'constant', 'reflect', 'replicate' or 'circular', not {mode!r}",
                                 mode=params["mode"]), node)
        if "seed" in spec.param_names and not 0 <= params.get("p", 0.5) <= 1:  # dropout and its channel variants
            raise self.error(Msg("dropout probability has to be between 0 and 1, but got {p}", p=params["p"]), node)

    # -------------------------------------------------------------- static values

    def is_static(self, node: ast.expr) -> bool:
        if isinstance(node, (ast.List, ast.Tuple)):
            return all(self.is_static(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        return isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool)

    def static(self, node: ast.expr, pname: str) -> Any:
        """A literal parameter: number, bool, None, string, or a tuple/list of integers."""
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, str) and pname not in STRING_PARAMS:
                raise self.error(Msg("a string is not allowed for {name!r}", name=pname), node)
            if isinstance(v, (int, float, bool, str)) or v is None:
                return v
        if isinstance(node, ast.Name) and node.id in NAMED_CONSTANTS:  # norm(x, p=inf)
            return NAMED_CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self.static(node.operand, pname)
            if isinstance(inner, (int, float)) and not isinstance(inner, bool):
                return -inner
        if isinstance(node, ast.BinOp):  # 10**6, 1/2: constant arithmetic
            value = self.expr(node)
            if isinstance(value, Const):
                return value.value if isinstance(value.value, int) else float(value.value)
        if isinstance(node, (ast.Tuple, ast.List)):
            items = tuple(self.static(e, pname) for e in node.elts)
            if all((isinstance(i, int) and not isinstance(i, bool)) or isinstance(i, _Computed) for i in items):
                return items
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.BinOp)):
            value = self.expr(node)  # n (bound to a number), x.shape[0], x.size(1), len(x), n // 2
            if isinstance(value, Const):
                return value.value if isinstance(value.value, int) else float(value.value)
            if _is_size(value):
                return _Computed(value)
        raise self.error(Msg("{name!r} must be a literal number (or tuple of integers) here", name=pname), node)

    def nested(self, node: ast.expr, depth: int = 0) -> Any:
        """A nested list literal for tensor([...]) or a value: numbers and exact fractions only."""
        if depth > self.limits.max_depth:
            raise self.error(Msg("list nested too deeply"), node, LimitError)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.nested(e, depth + 1) for e in node.elts]
            kinds = {isinstance(i, list) for i in items}
            if len(kinds) > 1:
                raise self.error(Msg("a list mixes numbers and lists"), node)
            if items and isinstance(items[0], list) and len({_shape(i) for i in items}) > 1:
                raise self.error(Msg("ragged list: rows have different lengths"), node)
            return items
        value = self.expr(node, depth + 1)
        if not isinstance(value, Const):
            raise self.error(Msg("a tensor literal holds numbers only"), node)
        return value.value

    def index_key(self, node: ast.expr, pending: list[Node] | None = None, depth: int = 0) -> tuple:
        """A static key: ints, slices, None, ``...``; with ``pending`` also index tensors (``C[Xb]``,
        ``x[range(n), y]``), each appended to ``pending`` (the index node's arguments after the base)."""
        parts = node.elts if isinstance(node, ast.Tuple) else [node]
        key: list[Any] = []
        for part in parts:
            if isinstance(part, ast.Slice):
                bounds = [None if b is None else self.int_literal(b) for b in (part.lower, part.upper, part.step)]
                if bounds[2] is not None and bounds[2] <= 0:
                    raise self.error(Msg("step must be greater than zero"), part.step)
                key.append(Slice(*bounds))
            elif isinstance(part, ast.Constant) and part.value is None:
                key.append(None)
            elif isinstance(part, ast.Constant) and part.value is Ellipsis:
                if Ellipsis in key:
                    raise self.error(Msg("an index can only have a single ellipsis ('...')"), part)
                key.append(Ellipsis)
            elif pending is not None and not isinstance(part, ast.Constant):
                value = self.expr(part, depth + 1, allow_compare=True)
                if isinstance(value, Const) and isinstance(value.value, int):
                    key.append(value.value)
                elif _is_size(value):
                    raise self.error(Msg("an index must be an integer literal, a slice or an index tensor"), part)
                else:
                    pending.append(value)
                    key.append(Slot(len(pending)))  # args[0] is the indexed tensor
            else:
                key.append(self.int_literal(part))
        return tuple(key)

    def int_literal(self, node: ast.expr) -> int:
        value = self.expr(node) if not isinstance(node, ast.Constant) else Const(self.number(node))
        if isinstance(value, Const) and isinstance(value.value, int):
            return value.value
        raise self.error(Msg("an index must be an integer literal or a slice such as 0, -1, :, 1:3"), node)


class _AstArguments:
    """:class:`gradexplain.binding.Arguments` over AST nodes: tensors are parsed EXPR, params literals."""

    def __init__(self, parser: _Parser, depth: int):
        self.parser, self.depth = parser, depth

    def tensor(self, item: ast.expr, allow_compare: bool = False) -> Node:
        return self.parser.expr(item, self.depth, allow_compare=allow_compare)

    def static(self, item: ast.expr, pname: str) -> Any:
        return self.parser.static(item, pname)

    def is_static(self, item: ast.expr) -> bool:
        return self.parser.is_static(item)

    def is_tensor(self, item: ast.expr) -> bool:
        return isinstance(item, (ast.Name, ast.Call, ast.Attribute, ast.Subscript, ast.BinOp))

    def elements(self, item: ast.expr) -> list[ast.expr] | None:
        return list(item.elts) if isinstance(item, (ast.List, ast.Tuple)) else None

    def is_string(self, item: ast.expr) -> bool:
        return isinstance(item, ast.Constant) and isinstance(item.value, str)

    def nested(self, item: ast.expr) -> Any:
        return self.parser.nested(item)

    def error(self, message: str, item: ast.AST | None = None) -> ParseError:
        return self.parser.error(message, item)


class _Computed:
    """A param computed when the program runs (``x.shape[0]``), before :func:`with_slots` places it."""

    def __init__(self, node: Node):
        self.node = node


def _is_size(node: Node) -> bool:
    """Whether a node is a Python integer computed from shapes (x.shape[0], len(x), n // 2 of those)."""
    return isinstance(node, Call) and REGISTRY[node.op].size_valued


def with_slots(name: str, args: list[Node], params: dict[str, Any], src: str) -> Call:
    """The call, with each computed param (``_Computed``) appended to its arguments and left as a Slot."""
    extra: list[Node] = list(args)

    def place(v: Any) -> Any:
        if isinstance(v, _Computed):
            extra.append(v.node)
            return Slot(len(extra) - 1)
        if isinstance(v, tuple):
            return tuple(place(x) for x in v)
        return v

    params = {k: place(v) for k, v in params.items()}
    return Call(name, tuple(extra), params, src=src)


def _in_namespace(namespace: str, name: str) -> bool:
    """Whether torch has ``name`` in ``torch.linalg``/``torch.special`` (as the user spells it)."""
    import torch  # heavy (already imported by the registry)

    module = {"linalg": torch.linalg, "special": torch.special}[namespace]
    return name in dir(module)


def _called_t(node: Node) -> Node:
    """``x.t()``/``torch.t(x)`` is TBackward0 in torch, the attribute ``x.T`` a permute: keep which one."""
    if isinstance(node, Call) and node.op == "t":
        node.params["attr"] = False
    return node


def _shape(item: Any) -> tuple:
    return (len(item),) + (_shape(item[0]) if item and isinstance(item[0], list) else ()) if isinstance(item, list) else ()


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _ast_parse(text: str, limits: Limits) -> ast.Module:
    if len(text) > limits.max_chars:
        raise LimitError(Msg("EXPR of {n} characters exceeds the limit of {limit} (raise it with --max-chars)",
                             n=len(text), limit=limits.max_chars))
    for i, ch in enumerate(text):
        if not _ok_char(ch):
            line = text.count("\n", 0, i) + 1
            col = i - (text.rfind("\n", 0, i) + 1)
            raise ParseError(Msg("character {char!r} (U+{code:04X}) is not allowed: EXPR is plain ASCII", char=ch,
                                 code=ord(ch)), col=col, line=line, source=text)
    _check_bracket_depth(text, limits)
    try:
        return ast.parse(text, mode="exec")
    except SyntaxError as e:
        if e.msg == "too many nested parentheses":  # Python's parser stops at 200, whatever --max-depth says
            raise LimitError(Msg("brackets nested deeper than Python's parser allows (200 levels)")) from None
        msg = (e.msg or "invalid syntax").replace("'(' was never closed", "unclosed '('")
        col = max((e.offset or 1) - 1, 0)
        if e.lineno and e.text is not None and col > len(text.splitlines()[e.lineno - 1] if text.splitlines() else ""):
            col = len(e.text.rstrip("\n"))
        reason = Msg(msg) if msg in PYTHON_SYNTAX else msg  # Python's words; the common ones are in the catalog
        raise ParseError(Msg("syntax: {reason}", reason=reason), col=col, line=e.lineno or 1,
                         source=text) from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise LimitError(Msg("EXPR too deeply nested for the parser ({kind})", kind=type(e).__name__)) from None


def _check_bracket_depth(text: str, limits: Limits) -> None:
    """Brackets count as nesting too: ``((((x))))`` leaves no trace in the AST, and Python's own parser
    stops at 200 levels with a syntax error that would not name --max-depth."""
    depth, quote = 0, None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            if depth > limits.max_depth:
                line = text.count("\n", 0, i) + 1
                raise LimitError(Msg("brackets nested deeper than {limit} levels (raise it with --max-depth)",
                                     limit=limits.max_depth), col=i - (text.rfind("\n", 0, i) + 1), line=line,
                                 source=text)
        elif ch in ")]}":
            depth -= 1


def parse_program(text: str, limits: Limits = DEFAULT) -> Program:
    """Parse an EXPR program; the last statement is the output."""
    return _Parser(text, limits).program()


def parse_expression(text: str, limits: Limits = DEFAULT, allow_names: bool = True, rule: bool = False) -> Node:
    """Parse one expression (a formula, or with ``allow_names=False`` a value)."""
    parser = _Parser(text, limits, allow_names=allow_names, rule=rule)
    tree = _ast_parse(text, limits)
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        raise ParseError(Msg("expected a single expression"), col=0, source=text)
    return parser.expr(tree.body[0].value)


def parse_rule(text: str) -> Node:
    """A derivative rule template from the registry (trusted text, same grammar)."""
    return parse_expression(text, rule=True)
