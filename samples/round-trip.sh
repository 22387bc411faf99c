#!/bin/sh
# The JSON document is for scripts: take the symbolic gradient of sigmoid(x).sum() from it
# and feed that formula back to eval with the same inputs; it reproduces the gradient's value.
# Run from the repository root:  sh samples/round-trip.sh
set -e
gradexplain eval "sigmoid(x).sum()" x=-1,0,2 --json | python3 -c 'import json, sys; g = json.load(sys.stdin)["grads"]["x"]; print(g["symbolic"]["expr"]); print(g["symbolic"]["value"])'
formula=$(gradexplain eval "sigmoid(x).sum()" x=-1,0,2 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["grads"]["x"]["symbolic"]["expr"])')
gradexplain eval --json --const x -- "$formula" x=-1,0,2 | python3 -c 'import json, sys; print("read back:", json.load(sys.stdin)["output"]["value"])'
