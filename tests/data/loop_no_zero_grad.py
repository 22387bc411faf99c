# A training loop that forgets optimizer.zero_grad(): w.grad piles up across iterations.
import torch

w = torch.tensor([1.0, -2.0], requires_grad=True)
x = torch.tensor([3.0, 4.0])
optimizer = torch.optim.SGD([w], lr=0.01)
for step in range(4):
    loss = ((w * x).sum() - 1) ** 2
    loss.backward()
    optimizer.step()
print(w.grad)
