#!/bin/sh
# The first example of every autograd tutorial: y = 2*dot(x, x), dy/dx = 4x.
# Shows the backward graph (DotBackward0 sends [2,4,6] along both edges, AccumulateGrad adds
# them to [4,8,12]), the closed form 4*x from SymPy, and a hand-derived answer proved right.
# Run from the repository root:  sh samples/dot-product.sh
set -e
gradexplain eval "2*dot(x,x)" x=1,2,3
gradexplain eval "2*dot(x,x)" x=1,2,3 --expect x=4*x --no-numeric
