# nn.Sequential classifier, cross_entropy against integer class targets, Adam: three steps.
import torch
import torch.nn as nn
import torch.nn.functional as F
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
x = torch.randn(5, 4)
t = torch.tensor([0, 2, 1, 1, 0])
opt = torch.optim.Adam(net.parameters(), lr=0.01)
for i in range(3):
    opt.zero_grad()
    logits = net(x)
    loss = F.cross_entropy(logits, t)
    p = F.softmax(logits, dim=1)
    loss.backward()
    opt.step()
print(loss.item())
