"""ResNet-20, MiniVGGNet and All-CNN-C in PyTorch, and airbench94 from its own source, for
``bench/pytorch_paired.py``.

Each has the layers of the suite's Keras builder with the knobs of its config: ResNet-20
with option-A shortcuts (``models/resnet.py``, He et al. 2015, section 4.2; shortcut A in
``configs/resnet20.yaml``), MiniVGGNet with batch norm after each ReLU and dropout 0.25
and 0.5 (``models/minivggnet.py``), All-CNN-C with 20% input dropout, stride-2 convs,
50% dropout after them, a 'valid' 3x3 conv and ReLU on the class maps
(``models/allcnn.py``, Springenberg et al. 2015, Table 1). Batch norm has the suite's
momentum and epsilon (``suite.models.common.batch_norm``: 0.9 / 1e-5, PyTorch's 0.1 / 1e-5).
airbench94 is the ``airbench`` package's network and training step (``airbench94_source``,
``airbench94_step``). ``build`` checks the learnable parameter count against the Keras
model's.

Left as PyTorch has them, for the same amount of work: the layout that ``Flatten`` reads
(NCHW or NHWC), 'same' padding of stride-2 convs (1 pixel each side here, 0 and 1 under
TensorFlow: the same output size) and the initialisation. The networks end in logits,
for ``nn.CrossEntropyLoss``, where the Keras models end in a softmax.
"""

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the option-A shortcut (subsample, zero-pad channels), ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), batch_norm(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), batch_norm(cout))
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        shortcut = x[:, :, ::self.stride, ::self.stride]
        if self.extra:
            shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return torch.relu(self.body(x) + shortcut)


def batch_norm(channels, dims=2):
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, eps=1e-5, momentum=0.1)


def resnet20():
    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), batch_norm(16), nn.ReLU()], 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(3):
            layers.append(ResidualBlock(cin, cout, 2 if stage and not i else 1))
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def minivggnet():
    layers, cin = [], 3
    for filters in (32, 64):
        for _ in range(2):
            layers += [nn.Conv2d(cin, filters, 3, padding=1), nn.ReLU(), batch_norm(filters)]
            cin = filters
        layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 8 * 8, 512), nn.ReLU(), batch_norm(512, dims=1),
                         nn.Dropout(0.5), nn.Linear(512, 10))


def allcnn_c():
    layers, cin = [nn.Dropout(0.2)], 3
    for filters in (96, 192):
        for stride in (1, 1, 2):
            layers += [nn.Conv2d(cin, filters, 3, stride, 1), nn.ReLU()]
            cin = filters
        layers.append(nn.Dropout(0.5))
    return nn.Sequential(*layers, nn.Conv2d(192, 192, 3), nn.ReLU(), nn.Conv2d(192, 192, 1), nn.ReLU(),
                         nn.Conv2d(192, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


NETS = {"resnet20": resnet20, "minivggnet": minivggnet, "allcnn_c": allcnn_c, "airbench94": lambda: airbench94_source()}


def build(name, learnable):
    """The network ``name``; SystemExit unless it has ``learnable`` parameters (the Keras
    model's trainable ones)."""
    net = NETS[name]()
    count = sum(p.numel() for p in net.parameters() if p.requires_grad)
    if count != learnable:
        raise SystemExit(f"the PyTorch {name} has {count:,} parameters, the suite's {learnable:,}")
    return net


def airbench94_source():
    """airbench94 as its source builds it (``make_net94`` of the ``airbench`` package, 0.1.8,
    ``pip install airbench==0.1.8 --no-deps``), in float32 on the CPU: the source turns the
    network to half precision on the GPU, which this keeps from happening (``half`` and
    ``cuda`` do nothing while it is built). The package's data loader needs torchvision,
    which the network does not: a stand-in module lets it import without it."""
    import sys
    import types
    for name in ("torchvision", "torchvision.transforms"):
        sys.modules.setdefault(name, types.ModuleType(name))
    from airbench import lib_airbench94

    half, cuda = nn.Module.half, nn.Module.cuda
    nn.Module.half = nn.Module.cuda = lambda self, *args, **kwargs: self
    try:
        return lib_airbench94.make_net94()
    finally:
        nn.Module.half, nn.Module.cuda = half, cuda


def airbench94_step(net, x, y):
    """One training step of airbench94 as the source's ``train`` takes it (airbench 0.1.8,
    ``utils.train``) with its hyperparameters (``lib_airbench94.hyp``): SGD with Nesterov
    momentum in two groups (batch-norm biases at ``bias_scaler`` times the rate), the
    decoupled rate and decay turned into PyTorch's, label-smoothed cross-entropy summed
    over the batch, the per-step rate schedule, and the source's ``LookaheadState`` every
    5 steps. Returns ``step()``."""
    from airbench import lib_airbench94, utils

    opt = lib_airbench94.hyp["opt"]
    per_kilostep = 1024 * (1 + 1 / (1 - opt["momentum"]))
    lr = opt["lr"] / per_kilostep
    decay = opt["weight_decay"] * len(x) / per_kilostep
    trained = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    norm_biases = [p for name, p in trained if "norm" in name]
    others = [p for name, p in trained if "norm" not in name]
    bias_lr = lr * opt["bias_scaler"]
    optimizer = torch.optim.SGD([dict(params=norm_biases, lr=bias_lr, weight_decay=decay / bias_lr),
                                 dict(params=others, lr=lr, weight_decay=decay / lr)],
                                momentum=opt["momentum"], nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)  # the source's triangle: a lookup
    loss_fn = nn.CrossEntropyLoss(label_smoothing=opt["label_smoothing"], reduction="none")
    lookahead, steps = utils.LookaheadState(net), [0]

    def step():
        loss = loss_fn(net(x), y).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        steps[0] += 1
        if steps[0] % 5 == 0:
            lookahead.update(net, decay=0.95 ** 5)

    return step
