# torch.autograd.grad with create_graph=True, then a backward through the gradient (double backward).
import torch

x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = (x ** 3).sum()
g, = torch.autograd.grad(y, x, create_graph=True)
print(g)                    # 3*x**2 = [3, 12, 27]
z = g.sum()
z.backward()
print(x.grad)               # 6*x = [6, 12, 18]
