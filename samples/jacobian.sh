#!/bin/sh
# A non-scalar output: backward() would need a gradient argument ("grad can be implicitly created
# only for scalar outputs"), so the tool explains why and shows the Jacobian instead;
# with -g it computes the vector-Jacobian product that x.grad would hold.
# Run from the repository root:  sh samples/jacobian.sh
set -e
gradexplain eval "softmax(x, 0)" x=1,2,3
gradexplain eval "softmax(x, 0)" x=1,2,3 -g 1,0,0
