#!/bin/sh
# backward() with a gradient argument through indexed assignment (CopySlices):
# out = 2*b with b[0,0] = a00^2 + a01 and b[0,1] = a01^3 + a00, seeded with [[1,2]] → a.grad = [[12,194]].
# No closed form exists through indexing, so the formula is written per element with stack([...]),
# and the Jacobian shows where vᵀJ comes from.
# Run from the repository root:  sh samples/vjp-copyslices.sh
set -e
gradexplain eval "b = zeros(1,2); b[0,0] = a[0,0]**2 + a[0,1]; b[0,1] = a[0,1]**3 + a[0,0]; 2*b" a=[[2,4]] -g [[1,2]]
