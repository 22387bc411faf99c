"""Regenerate the README's terminal pictures: ``python docs/make_demo.py`` (from the repository root).

Each picture is the real ``gradexplain eval`` text output, recorded by rich and saved as SVG.
"""
from __future__ import annotations

from pathlib import Path

from gradexplain.explain import EvalOptions, explain
from gradexplain.render.text import make_console, print_report

HERE = Path(__file__).resolve().parent
WIDTH = 130
DEMOS = {
    "demo.svg": EvalOptions(expr="2*dot(x,x)", values=["x=1,2,3"]),
    "demo-vjp.svg": EvalOptions(expr="b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b",
                                values=["a=[[2,4]]"], grad_output="[[1,2]]"),
}


def command_line(opts: EvalOptions) -> str:
    grad = f" -g {opts.grad_output}" if opts.grad_output else ""
    return f'$ gradexplain eval "{opts.expr}" {" ".join(opts.values)}{grad}'


def main() -> None:
    for name, opts in DEMOS.items():
        console = make_console(record=True)
        console.width = WIDTH
        console.print(command_line(opts), style="bold")
        print_report(explain(opts), console)
        console.save_svg(str(HERE / name), title=command_line(opts)[2:])
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
