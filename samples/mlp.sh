#!/bin/sh
# The MLP of the articles as one EXPR program — LayerNorm → Linear → relu → Dropout → Linear → MSELoss —
# with small fixed weights, trained for 3 SGD steps.  Every update is written out with its numbers,
# every gradient is checked against SymPy, and the dropout mask of each step is shown.
# Run from the repository root:  sh samples/mlp.sh   (add --json for the machine-readable steps)
exec gradexplain eval "
h = layer_norm(x, [3], ln_w, ln_b)
a = relu(linear(h, W1, b1))
d = dropout(a, 0.5)
y = linear(d, W2, b2)
mse_loss(y, t)" \
  x=[[1,2,3],[0,-1,2]] t=[[1],[0]] \
  ln_w=1,1,1 ln_b=0,0,0 \
  W1=[[0.1,-0.2,0.3],[0.4,0.1,-0.1],[-0.3,0.2,0.2],[0.2,0.3,-0.4]] b1=0,0.1,0,-0.1 \
  W2=[[0.5,-0.4,0.3,0.2]] b2=0.1 \
  --const x,t --seed 0 --step sgd --lr 0.1 --steps 3 "$@"
