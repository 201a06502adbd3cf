"""The CoordGate U-Net as the paper's author writes it, in PyTorch (benchmark peer).

CoordGate follows the author's module (sunnyhoward/CoordGate, enctype 'pos'):
the coordinate grid is a buffer, `encoding_layers` Linear layers (no
activation between them) map it to a gate on every forward, ReLU, multiply,
1x1 convolution. The U-Net around it has the layout of `coordgate_unet_dN`
(`coordgate_keras.zoo.build_unet(spatial="coordgate")`): the same convolutions,
widths, gate positions, nearest up-sampling + 3x3 convolution, and so the same
parameter count. Only for benchmarks; PyTorch is not a package dependency.
"""

import torch
from torch import nn
from torch.nn import functional as F


class CoordGate(nn.Module):
    def __init__(self, channels, size, encoding_layers=3, enc_channels=64):
        super().__init__()
        rows = torch.linspace(-1, 1, size[0])
        cols = torch.linspace(-1, 1, size[1])
        grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1)
        self.register_buffer("pos", grid.view(-1, 2))
        self.size = tuple(size)
        layers = []
        for i in range(encoding_layers):
            fan_in = 2 if i == 0 else enc_channels
            fan_out = channels if i == encoding_layers - 1 else enc_channels
            layers.append(nn.Linear(fan_in, fan_out))
        self.encoder = nn.Sequential(*layers)
        self.conv = nn.Conv2d(channels, channels, 1)
        self.channels = channels

    def forward(self, x):
        gate = self.encoder(self.pos).view(1, *self.size, self.channels)
        gate = F.relu(gate.permute(0, 3, 1, 2))
        return self.conv(x * gate)


def _block(cin, cout, convs=2):
    layers = []
    for j in range(convs):
        layers += [nn.Conv2d(cin if j == 0 else cout, cout, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


class CGUNet(nn.Module):
    def __init__(self, size, depth=2, base_filters=32, in_channels=1, out_channels=1):
        super().__init__()
        self.depth = depth
        height, width = size
        self.down, self.down_gates = nn.ModuleList(), nn.ModuleList()
        cin = in_channels
        for i in range(depth):
            f = base_filters * 2**i
            self.down.append(_block(cin, f))
            self.down_gates.append(CoordGate(f, (height >> i, width >> i)))
            cin = f
        self.bottleneck = _block(cin, base_filters * 2**depth)
        self.up_gates, self.up_convs, self.up = (
            nn.ModuleList(),
            nn.ModuleList(),
            nn.ModuleList(),
        )
        for i in reversed(range(depth)):
            f = base_filters * 2**i
            self.up_gates.append(
                CoordGate(2 * f, (height >> (i + 1), width >> (i + 1)))
            )
            self.up_convs.append(nn.Conv2d(2 * f, f, 3, padding=1))
            self.up.append(_block(2 * f, f))
        self.out_gate = CoordGate(base_filters, (height, width))
        self.out_conv = nn.Conv2d(base_filters, out_channels, 1)

    def forward(self, x):
        skips = []
        for block, gate in zip(self.down, self.down_gates):
            x = gate(block(x))
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for gate, up_conv, block, skip in zip(
            self.up_gates, self.up_convs, self.up, reversed(skips)
        ):
            x = up_conv(F.interpolate(gate(x), scale_factor=2, mode="nearest"))
            x = block(torch.cat([skip, x], dim=1))
        return self.out_conv(self.out_gate(x))


def build(size, depth=2, base_filters=32, seed=0):
    torch.manual_seed(seed)
    return CGUNet(size, depth=depth, base_filters=base_filters).eval()


def num_params(model):
    return sum(p.numel() for p in model.parameters())
