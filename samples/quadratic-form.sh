#!/bin/sh
# A quadratic form with a constant matrix: d(x·Ax)/dx = (A + Aᵀ)x, not 2Ax, when A is not symmetric.
# The second command states the textbook answer and gets it proved (numerically and by SymPy);
# the third states the common mistake 2*A @ x and exits 1 showing the differing entries.
# Run from the repository root:  sh samples/quadratic-form.sh
gradexplain eval "x @ A @ x" x=1,2 A=[[1,2],[3,4]] --const A
gradexplain eval "x @ A @ x" x=1,2 A=[[1,2],[3,4]] --const A --expect "x=(A + A.T) @ x" --no-numeric
gradexplain eval "x @ A @ x" x=1,2 A=[[1,2],[3,4]] --const A --expect "x=2*A @ x" --no-numeric || echo "exit $?: 2*A @ x is wrong for a non-symmetric A"
