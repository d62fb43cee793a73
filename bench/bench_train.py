"""One training step of examples/train_digits.py's model through the daemon vs the same
model and step in PyTorch on the CPU: same machine, same run, same batch, same initial
weights.

Usage: python bench/bench_train.py [ADDRESS] [--model cnn|mlp] [--batch N] [--steps N]
                                   [--rounds N] [--threads N] [--torch-python PATH]

A step is zero_grad, forward, cross-entropy loss, backward and an Adam step (lr 1e-2).
The tensord side runs in this interpreter against a private daemon started with
--compute-threads N (or ADDRESS); each timed step ends with client.sync(), so it covers
the daemon finishing the step, as PyTorch's synchronous step does. Pipelined steps (no
sync between them, one at the end) are reported too. The PyTorch side runs in a worker
process under --torch-python (default /usr/bin/python3, where bench/setup_torch.sh puts
Debian's python3-torch) with torch.set_num_threads(N) and gets the batch and the initial
weights from this process, so both sides compute the same thing: the first step's losses
and the updated weights are compared. The two sides take turns (rounds), never running
at the same time. Prints median step times and the ratio tensord / PyTorch.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the PyTorch worker (runs under the torch interpreter, reads commands on stdin) ----
TORCH_WORKER = r'''
import json, sys, time
import numpy as np
import torch
from torch import nn

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
data = np.load(args["data"])
x = torch.from_numpy(data["x"])
y = torch.from_numpy(data["y"])
if args["model"] == "cnn":
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10))
else:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
state = {k[len("w:"):]: torch.from_numpy(data[k]) for k in data.files if k.startswith("w:")}
model.load_state_dict(state)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()

def step():
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss

first = step().item()
after = {k: v.detach().numpy().tolist() for k, v in model.state_dict().items()}
print(json.dumps({"first_loss": first, "after": after,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    n = int(line)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps(times), flush=True)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address", nargs="?", default=os.environ.get("TENSORD_ADDRESS"))
    ap.add_argument("--model", choices=("cnn", "mlp"), default="cnn")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100, help="timed steps per round and side")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--torch-python", default="/usr/bin/python3")
    args = ap.parse_args()

    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    import tensord as td
    import train_digits

    c = td.connect(args.address, seed=1,
                   daemon_args=("--compute-threads", str(args.threads)))
    x_tr, y_tr, _, _ = train_digits.load_data(0)
    xb_np, yb_np = x_tr[:args.batch].copy(), y_tr[:args.batch].copy()
    model = train_digits.build_model(args.model)
    init = {k: v.detach().numpy() for k, v in model.state_dict().items()}

    tmp = tempfile.mkdtemp(prefix="bench_train-")
    data_path = os.path.join(tmp, "data.npz")
    np.savez(data_path, x=xb_np, y=yb_np, **{"w:" + k: v for k, v in init.items()})
    worker_args = json.dumps({"threads": args.threads, "data": data_path,
                              "model": args.model})
    worker = subprocess.Popen([args.torch_python, "-c", TORCH_WORKER, worker_args],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        hello = json.loads(worker.stdout.readline())
    except ValueError:
        worker.kill()
        sys.exit("the PyTorch worker under %s failed to start (run bench/setup_torch.sh)"
                 % args.torch_python)

    xb, yb = td.tensor(xb_np), td.tensor(yb_np)
    opt = td.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = td.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    # Same weights, same batch: the first step's loss and updated weights must agree.
    first = step().item()
    after = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    werr = max(float(np.max(np.abs(after[k] - np.asarray(v, np.float32))))
               for k, v in hello["after"].items())
    print("model %s, batch %d, %d compute threads; tensord %s (%s), PyTorch %s (%d threads)"
          % (args.model, args.batch, args.threads, c.server_version, c.address,
             hello["torch"], hello["threads"]))
    print("first step: loss tensord %.6f, PyTorch %.6f; max |weight difference| after it "
          "%.2e" % (first, hello["first_loss"], werr))
    ok = abs(first - hello["first_loss"]) < 1e-4 and werr < 1e-4

    def ours(n):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            c.sync()
            times.append(time.perf_counter() - t0)
        return times

    def ours_pipelined(n):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        c.sync()
        return (time.perf_counter() - t0) / n

    def theirs(n):
        worker.stdin.write("%d\n" % n)
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    ours(10)
    theirs(10)
    td_times, pt_times, piped = [], [], []
    for _ in range(args.rounds):
        time.sleep(0.2)
        td_times += ours(args.steps)
        piped.append(ours_pipelined(args.steps))
        time.sleep(0.2)
        pt_times += theirs(args.steps)
    worker.stdin.close()
    worker.wait()
    c.close()
    os.unlink(data_path)
    os.rmdir(tmp)

    t_td = statistics.median(td_times) * 1e3
    t_pt = statistics.median(pt_times) * 1e3
    print("median step: tensord %.3f ms, PyTorch %.3f ms, ratio %.2f (target <= 1.5)"
          % (t_td, t_pt, t_td / t_pt))
    print("tensord pipelined (one sync per %d steps): %.3f ms/step, ratio %.2f"
          % (args.steps, statistics.median(piped) * 1e3, statistics.median(piped) * 1e3 / t_pt))
    if not ok:
        print("MISMATCH: the two sides computed different steps")
        sys.exit(1)


if __name__ == "__main__":
    main()
