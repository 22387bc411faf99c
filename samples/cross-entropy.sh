#!/bin/sh
# Softmax cross-entropy of logits against class indices: dL/dz = (softmax(z) - one_hot(target))/N.
# tensor([0, 2]) is an integer tensor, as PyTorch's class targets must be.
# Run from the repository root:  sh samples/cross-entropy.sh
set -e
gradexplain eval "cross_entropy(z, tensor([0, 2]))" z=[[2,1,0.1],[0.5,2.5,0.3]]
