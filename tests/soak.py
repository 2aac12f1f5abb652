#!/usr/bin/env python3
"""Soak with churn against a running meteord (driven by tests/soak.sh).

Load, all at once, for --seconds: subscribers that connect, read a little
and leave (streaming, long-poll and poll modes, some resuming with .r<id>);
slow readers (a little every 200 ms); stalled readers (never read: the
daemon drops them at WriteTimeout, they come back); half-sent request heads
(cut at HeaderTimeout); publishers on the controller as fast as acknowledged
(capped by --rate); SIGHUP every --hup seconds.

A warm-up round of the same load comes first; once it has drained, the
daemon's file descriptors, threads and RSS are the baseline. After the soak
has drained the same way they must be back: fds and threads within
--fd-margin / --thread-margin of the baseline, RSS within --rss-margin
(a fraction) plus --rss-slack-mib. Exit 0 = pass, 1 = fail (why on stderr).
"""

import argparse
import asyncio
import os
import random
import signal
import socket
import sys
import time

CHANNELS = [f"soak{i}" for i in range(20)]
# The stalled readers' channel: large messages, so their socket buffers
# fill and the daemon's WriteTimeout cuts them within the run.
BULK = "bulk"
MODES = ["xhrinteractive", "iframe", "longpoll", "smartpoll", "simplepoll"]


def proc_figures(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = rss_kib = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    return {"fds": fds, "threads": threads, "rss_kib": rss_kib}


class Load:
    def __init__(self, args):
        self.args = args
        self.stop = False
        self.published = 0
        self.errors = 0
        self.last_id = 1
        self.counts = {"churn": 0, "slow": 0, "stalled": 0, "trickle": 0}

    async def request(self, path, read_for, read_chunk=65536, pause=0.0):
        """One subscriber connection: send the request, read for a while."""
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(self.args.host, self.args.sub), 5)
        except (OSError, asyncio.TimeoutError):
            self.errors += 1
            await asyncio.sleep(0.1)
            return
        try:
            w.write(f"GET {path} HTTP/1.1\r\nHost: soak\r\nUser-Agent: soak\r\n\r\n".encode())
            await w.drain()
            deadline = time.monotonic() + read_for
            while not self.stop and time.monotonic() < deadline:
                try:
                    data = await asyncio.wait_for(r.read(read_chunk), 0.5)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break
                if pause:
                    await asyncio.sleep(pause)
        except OSError:
            pass
        finally:
            w.close()

    async def churn(self, n):
        while not self.stop:
            mode = random.choice(MODES)
            ch = random.choice(CHANNELS)
            marker = random.choice(["", ".h", ".b5", f".r{max(1, self.last_id - 50)}"])
            await self.request(f"/push/c{n}x{random.randrange(1 << 30)}/{mode}/{ch}{marker}",
                               random.uniform(0.05, 1.5))
            self.counts["churn"] += 1

    async def slow(self, n):
        while not self.stop:
            await self.request(f"/push/slow{n}/xhrinteractive/{CHANNELS[n % 20]}", 20,
                               read_chunk=1024, pause=0.2)
            self.counts["slow"] += 1

    async def stalled(self, n):
        while not self.stop:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            try:
                await asyncio.wait_for(
                    asyncio.get_running_loop().sock_connect(s, (self.args.host, self.args.sub)), 5)
                s.send(f"GET /push/stall{n}/xhrinteractive/{BULK} HTTP/1.1\r\n\r\n".encode())
                # Never read; wait until the daemon gives up on us (or 30 s).
                deadline = time.monotonic() + 30
                while not self.stop and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    try:
                        s.send(b"")
                    except OSError:
                        break
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                s.close()
            self.counts["stalled"] += 1

    async def trickle(self, n):
        while not self.stop:
            try:
                r, w = await asyncio.open_connection(self.args.host, self.args.sub)
                w.write(b"GET /push/t/xhrinteractive/")
                for _ in range(40):
                    if self.stop:
                        break
                    w.write(b"a")
                    await w.drain()
                    await asyncio.sleep(0.25)
                w.close()
            except OSError:
                await asyncio.sleep(0.2)
            self.counts["trickle"] += 1

    async def publisher(self, n, rate, channels=CHANNELS, size=200):
        text = "x" * size
        while not self.stop:
            try:
                r, w = await asyncio.open_connection(self.args.host, self.args.ctl)
                batch = 20
                while not self.stop:
                    started = time.monotonic()
                    for i in range(batch):
                        w.write(f"ADDMESSAGE {channels[(n + i) % len(channels)]} {text}\n".encode())
                    await w.drain()
                    for _ in range(batch):
                        line = await asyncio.wait_for(r.readline(), 10)
                        if not line.startswith(b"OK\t"):
                            raise OSError(f"publish answered {line!r}")
                        self.last_id = int(line[3:])
                        self.published += 1
                    # Keep to `rate` messages per second for this publisher.
                    spare = batch / rate - (time.monotonic() - started)
                    if spare > 0:
                        await asyncio.sleep(spare)
                w.close()
            except (OSError, asyncio.TimeoutError) as e:
                self.errors += 1
                print(f"soak: publisher {n}: {e}", file=sys.stderr)
                await asyncio.sleep(0.5)

    async def hup(self, pid, every):
        while not self.stop:
            await asyncio.sleep(every)
            if not self.stop:
                os.kill(pid, signal.SIGHUP)

    async def run(self, seconds, pid, hup_every):
        a = self.args
        tasks = [asyncio.create_task(self.churn(i)) for i in range(a.churners)]
        tasks += [asyncio.create_task(self.slow(i)) for i in range(a.slow)]
        tasks += [asyncio.create_task(self.stalled(i)) for i in range(a.stalled)]
        tasks += [asyncio.create_task(self.trickle(i)) for i in range(a.trickle)]
        tasks += [asyncio.create_task(self.publisher(i, a.rate / a.publishers))
                  for i in range(a.publishers)]
        tasks.append(asyncio.create_task(self.publisher(0, 40, [BULK], 16384)))
        if hup_every:
            tasks.append(asyncio.create_task(self.hup(pid, hup_every)))
        await asyncio.sleep(seconds)
        self.stop = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def controller(args, line):
    with socket.create_connection((args.host, args.ctl), timeout=10) as s:
        s.sendall(line.encode() + b"\n")
        data = b""
        while b"--EOT--" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")


def metrics(args):
    """The daemon's /metrics samples we report on, by name and labels."""
    if not args.metrics:
        return {}
    with socket.create_connection((args.host, args.metrics), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: soak\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    return {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1])
            for l in body.splitlines() if l and not l.startswith("#")}


def drain(args, pid):
    """Wait until no subscriber and only our controller connection is left."""
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        stats = controller(args, "SHOWSTATS")
        fields = dict(l.split(": ", 1) for l in stats.split("\r\n") if ": " in l)
        if fields.get("current_subscribers", "0") == "0":
            break
        time.sleep(0.5)
    # Let tokio's idle blocking threads (10 s keep-alive) and the clock's
    # round settle before reading the figures.
    time.sleep(args.settle)
    return proc_figures(pid)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--sub", type=int, required=True)
    p.add_argument("--ctl", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--metrics", type=int, default=0, help="the daemon's MetricsPort (0 = none)")
    p.add_argument("--seconds", type=float, default=1800)
    p.add_argument("--warmup", type=float, default=60)
    p.add_argument("--hup", type=float, default=60)
    p.add_argument("--rate", type=float, default=2000, help="messages per second, all publishers")
    p.add_argument("--publishers", type=int, default=2)
    p.add_argument("--churners", type=int, default=30)
    p.add_argument("--slow", type=int, default=5)
    p.add_argument("--stalled", type=int, default=5)
    p.add_argument("--trickle", type=int, default=10)
    p.add_argument("--drain", type=float, default=40)
    p.add_argument("--settle", type=float, default=12)
    p.add_argument("--fd-margin", type=int, default=2)
    p.add_argument("--thread-margin", type=int, default=2)
    p.add_argument("--rss-margin", type=float, default=0.25)
    p.add_argument("--rss-slack-mib", type=float, default=8)
    args = p.parse_args()

    warm = Load(args)
    asyncio.run(warm.run(args.warmup, args.pid, 0))
    base = drain(args, args.pid)
    print(f"soak: baseline after {args.warmup:.0f} s warm-up: {base}", file=sys.stderr)

    load = Load(args)
    started = time.monotonic()
    asyncio.run(load.run(args.seconds, args.pid, args.hup))
    took = time.monotonic() - started
    end = drain(args, args.pid)
    print(f"soak: {took:.0f} s: published {load.published} ({load.published / took:.0f}/s), "
          f"connections {load.counts}, client errors {load.errors}", file=sys.stderr)
    print(f"soak: after drain: {end}", file=sys.stderr)

    failures = []
    m = metrics(args)
    if m:
        cut = {k: int(v) for k, v in m.items()
               if k.startswith(("meteord_limit_refusals_total", "meteord_closes_total")) and v}
        print(f"soak: daemon's refusals and closes: {cut}", file=sys.stderr)
        for limit in ("write_timeout", "header_timeout"):
            if not m.get(f'meteord_limit_refusals_total{{limit="{limit}"}}'):
                failures.append(f"no client was cut off by {limit}")
    if abs(end["fds"] - base["fds"]) > args.fd_margin:
        failures.append(f"fds {base['fds']} -> {end['fds']} (margin {args.fd_margin})")
    if end["threads"] - base["threads"] > args.thread_margin:
        failures.append(f"threads {base['threads']} -> {end['threads']} (margin {args.thread_margin})")
    rss_limit = base["rss_kib"] * (1 + args.rss_margin) + args.rss_slack_mib * 1024
    if end["rss_kib"] > rss_limit:
        failures.append(f"RSS {base['rss_kib']} KiB -> {end['rss_kib']} KiB (limit {rss_limit:.0f} KiB)")
    if load.published == 0:
        failures.append("nothing was published")
    stats = controller(args, "SHOWSTATS")
    if "uptime" not in stats:
        failures.append(f"SHOWSTATS after the soak: {stats!r}")
    for f in failures:
        print(f"soak: FAIL: {f}", file=sys.stderr)
    if not failures:
        print("soak: PASS: fds, threads and RSS back to the baseline", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
