"""A PyTorch user's path, measured once (docs/onnx-import.md, "Measured"): trains a
MobileNetV2-style net on classes 0-4 of a 32x32x3 image set written by
`sprig make-rgb --side 32 --per-class 300 --out DIR`, prints its test accuracy,
and exports it for `sprig import`. Not run by the tests.

  .build/onnx-venv/bin/python tools/onnx_trained_check.py DIR trained-mobilenet.onnx
(the venv is the one tools/make-onnx-fixtures makes)
"""
import gzip, struct, sys
import numpy as np, torch, torch.nn as nn
def read_idx(p):
    b = gzip.open(p).read(); n = b[3]
    dims = struct.unpack(">" + "I" * n, b[4:4 + 4 * n])
    return np.frombuffer(b[4 + 4 * n:], dtype=np.uint8).reshape(dims)
d = sys.argv[1] + "/"
xtr, ytr = read_idx(d + "train-images-idx3-ubyte.gz"), read_idx(d + "train-labels-idx1-ubyte.gz")
xte, yte = read_idx(d + "t10k-images-idx3-ubyte.gz"), read_idx(d + "t10k-labels-idx1-ubyte.gz")
mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1); std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
def prep(x): return torch.from_numpy(((x.astype(np.float32).transpose(0, 3, 1, 2) / 255) - mean) / std)
src = ytr < 5; Xtr, Ytr = prep(xtr[src]), torch.from_numpy(ytr[src].astype(np.int64))
srt = yte < 5; Xte, Yte = prep(xte[srt]), torch.from_numpy(yte[srt].astype(np.int64))
def conv_bn(cin, cout, k=3, stride=1, groups=1, act=None):
    l = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return l + ([act()] if act else [])
class IR(nn.Module):
    def __init__(s, cin, e, cout, stride):
        super().__init__(); s.add = stride == 1 and cin == cout
        s.body = nn.Sequential(*conv_bn(cin, e, 1, act=nn.ReLU6), *conv_bn(e, e, 3, stride, e, act=nn.ReLU6), *conv_bn(e, cout, 1))
    def forward(s, x): y = s.body(x); return x + y if s.add else y
class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.f = nn.Sequential(*conv_bn(3, 16, act=nn.ReLU6), IR(16, 48, 16, 1), IR(16, 64, 24, 2), IR(24, 96, 24, 1), IR(24, 96, 32, 2),
                            *conv_bn(32, 96, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1))
        s.c = nn.Linear(96, 5)
    def forward(s, x): return s.c(torch.flatten(s.f(x), 1))
torch.manual_seed(0); m = Net(); opt = torch.optim.Adam(m.parameters(), 3e-3)
print("train", len(Xtr), "test", len(Xte))
for ep in range(6):
    m.train(); perm = torch.randperm(len(Xtr))
    for i in range(0, len(Xtr), 64):
        idx = perm[i:i + 64]; opt.zero_grad(); loss = nn.functional.cross_entropy(m(Xtr[idx]), Ytr[idx]); loss.backward(); opt.step()
    m.eval()
    with torch.no_grad(): acc = (m(Xte).argmax(1) == Yte).float().mean().item()
    print("epoch", ep, "loss", loss.item(), "test acc", acc)
torch.onnx.export(m, (torch.zeros(1, 3, 32, 32),), sys.argv[2], opset_version=17, input_names=["input"], output_names=["logits"], dynamo=False)
