"""The reference's training step in PyTorch eager, timed like `python -m tools.benchmark`.

A baseline for issue 7's speed targets, not part of the library: it needs `torch` (see
`benchmarks/requirements-bench.txt`, installed only for benchmarking, never by CI) and
nothing from `nasty_tf`, so it runs in a separate virtual environment.

What it times, on synthetic CIFAR-shaped tensors already on the device (no data loader, no
augmentation: the cheapest possible input path for the baseline):

* `normal`: one train step of the CIFAR ResNet-18 of kuangliu/pytorch-cifar as the Nasty
  Teacher code uses it (3x3 stem, no max-pool, adaptive average pooling), cross-entropy,
  `SGD(lr=0.1, momentum=0.9, weight_decay=5e-4)`.
* `nasty`: the reference's nasty step: the train step of f_T plus a `torch.no_grad()` forward
  of the frozen adversary f_A in eval mode, loss `CE - omega * tau^2 * KL(p_T || p_A)`
  (tau 4, omega 0.04).
* `kd`: the student's train step plus the teacher's no-grad eval forward, loss
  `alpha * tau^2 * KL(p_teacher || p_student) + (1 - alpha) * CE` (alpha 0.9, tau 4).

Prints one JSON object per mode on its own line, with the fields of `tools.benchmark`.

    /work/bench-venv/bin/python benchmarks/pytorch_reference.py --mode=nasty,normal \\
        --batch_size=128 --steps=10 --warmup_steps=3 --repeats=3
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("normal", "nasty", "kd")
PRECISIONS = ("float32", "bf16_autocast")
OMEGA, TEMPERATURE, ALPHA = 0.04, 4.0, 0.9


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, num_blocks[0], 1)
        self.layer2 = self._make_layer(128, num_blocks[1], 2)
        self.layer3 = self._make_layer(256, num_blocks[2], 2)
        self.layer4 = self._make_layer(512, num_blocks[3], 2)
        self.linear = nn.Linear(512, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, (1, 1)).flatten(1)
        return self.linear(out)


ARCHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


def tempered_kl(target_logits, predicted_logits):
    """`tau^2 * KL(softmax(target/tau) || softmax(predicted/tau))`, batch mean (the reference's
    `nn.KLDivLoss(reduction="batchmean")(log_softmax(predicted/tau), softmax(target/tau))`)."""
    return (
        nn.KLDivLoss(reduction="batchmean")(
            F.log_softmax(predicted_logits / TEMPERATURE, dim=1),
            F.softmax(target_logits / TEMPERATURE, dim=1),
        )
        * TEMPERATURE**2
    )


def make_step(mode, network, frozen, optimizer, autocast):
    def step(images, labels):
        with autocast():
            logits = network(images)
            if frozen is not None:
                with torch.no_grad():
                    frozen_logits = frozen(images)
        logits = logits.float()
        ce = F.cross_entropy(logits, labels)
        if mode == "normal":
            loss = ce
        elif mode == "nasty":
            loss = ce - OMEGA * tempered_kl(logits, frozen_logits.float())
        else:
            loss = ALPHA * tempered_kl(frozen_logits.float(), logits) + (1 - ALPHA) * ce
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def machine(device):
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    description = {"cpu": model or platform.processor(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        description["accelerator"] = torch.cuda.get_device_name(device)
    return description


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18", choices=sorted(ARCHS))
    parser.add_argument(
        "--mode", default="normal,nasty", help="comma-separated: " + ",".join(MODES)
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--warmup_steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    parser.add_argument("--channels_last", action="store_true", help="NHWC memory format")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0: default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.modes = [m for m in args.mode.split(",") if m]
    bad = [m for m in args.modes if m not in MODES]
    if bad or not args.modes:
        parser.error(
            f"--mode must be a comma-separated list of {', '.join(MODES)}. Received: {args.mode}"
        )
    for name in ("batch_size", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1. Received: {getattr(args, name)}")
    if args.warmup_steps < 0:
        parser.error(f"--warmup_steps must be >= 0. Received: {args.warmup_steps}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    torch.manual_seed(args.seed)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.precision == "bf16_autocast":
        autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = lambda: torch.autocast(device.type, enabled=False)  # noqa: E731

    # A few distinct batches, cycled, so that no step reuses the previous step's input.
    pool = 4
    images = torch.randn(pool, args.batch_size, 3, 32, 32, device=device)
    images = [b.contiguous(memory_format=memory_format) for b in images]
    labels = torch.randint(0, 10, (pool, args.batch_size), device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    steps = {}
    for mode in args.modes:
        network = ResNet(ARCHS[args.arch]).to(device, memory_format=memory_format).train()
        frozen = None
        if mode != "normal":
            frozen = ResNet(ARCHS[args.arch]).to(device, memory_format=memory_format).eval()
            for p in frozen.parameters():
                p.requires_grad_(False)
        optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        steps[mode] = make_step(mode, network, frozen, optimizer, autocast)

    def run(mode, count):
        for i in range(count):
            steps[mode](images[i % pool], labels[i % pool])
        sync()

    for mode in args.modes:
        run(mode, args.warmup_steps)
    seconds = {mode: [] for mode in args.modes}
    cpu_seconds = {mode: [] for mode in args.modes}  # all threads' CPU time: see tools.benchmark
    for _ in range(args.repeats):  # interleaved: A, B, A, B...
        for mode in args.modes:
            started, cpu_started = time.perf_counter(), time.process_time()
            run(mode, args.steps)
            seconds[mode].append(time.perf_counter() - started)
            cpu_seconds[mode].append(time.process_time() - cpu_started)

    for mode in args.modes:
        per_step = statistics.median(seconds[mode]) / args.steps
        print(
            json.dumps(
                {
                    "framework": "pytorch",
                    "backend": "pytorch-eager",
                    "torch_version": torch.__version__,
                    "mode": mode,
                    "arch": args.arch,
                    "batch_size": args.batch_size,
                    "precision": args.precision,
                    "jit_compile": False,
                    "channels_last": args.channels_last,
                    "images_per_second": round(args.batch_size / per_step, 2),
                    "seconds_per_step": round(per_step, 5),
                    "repeat_images_per_second": [
                        round(args.batch_size * args.steps / s, 2) for s in seconds[mode]
                    ],
                    "cpu_seconds_per_step": round(
                        statistics.median(cpu_seconds[mode]) / args.steps, 5
                    ),
                    "steps": args.steps,
                    "warmup_steps": args.warmup_steps,
                    "repeats": args.repeats,
                    "threads": torch.get_num_threads(),
                    "input": "synthetic float tensors on the device",
                    "machine": machine(device),
                    "load_average": [round(v, 2) for v in os.getloadavg()],
                    "nice": os.nice(0),
                    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
