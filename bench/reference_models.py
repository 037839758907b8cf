"""PyTorch reference of GreenRFM's image encoder, with the same state_dict keys as torchvision's r3d_18
and as our Swift ResNet3D18 (stem swapped for a one-channel 2^3/stride-2 or 4^3/stride-4 convolution).
Written here because torchvision is not needed for anything else; the layout follows
torchvision.models.video.resnet (VideoResNet, BasicBlock, Conv3DSimple)."""
import torch
from torch import nn


def conv_bn(inp, out, kernel, stride, padding, relu):
    layers = [nn.Conv3d(inp, out, kernel, stride=stride, padding=padding, bias=False), nn.BatchNorm3d(out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = conv_bn(inplanes, planes, 3, stride, 1, True)
        self.conv2 = conv_bn(planes, planes, 3, 1, 1, False)
        self.downsample = conv_bn(inplanes, planes, 1, stride, 0, False) if stride != 1 or inplanes != planes else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class ResNet3D18(nn.Module):
    def __init__(self, stem="lite", in_channels=1, classes=None):
        super().__init__()
        k = 4 if stem == "lite" else 2
        self.stem = conv_bn(in_channels, 64, k, k, 0, True)
        inplanes = 64
        for i, planes in enumerate([64, 128, 256, 512]):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1)))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512, classes) if classes else None
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x).flatten(1)
        return self.fc(x) if self.fc is not None else x
