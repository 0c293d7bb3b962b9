"""Opens N TCP connections to ADDR that never send a byte, WAVES times
over, and reports when the server closed them (seconds after each was
opened: the first and the last) and the server's resident memory before
the first wave, at its peak and after each wave.

    silent.py ADDR N PID WAVES
"""

import asyncio
import sys
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def wave(host, port, n, pid):
    """One wave: the seconds to the first and the last close, and the peak RSS."""
    peak = rss_mib(pid)
    opened = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, int(port))
        opened.append((time.monotonic(), reader, writer))

    async def closed_after(at, reader, writer):
        await reader.read()  # b"" once the server closes
        writer.close()
        return time.monotonic() - at

    waits = [asyncio.create_task(closed_after(*c)) for c in opened]
    pending = set(waits)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=0.25)
        peak = max(peak, rss_mib(pid))
    closes = sorted(w.result() for w in waits)
    return closes[0], closes[-1], peak


async def main(addr, n, pid, waves):
    host, port = addr.rsplit(":", 1)
    before = rss_mib(pid)
    first, last, peak, after = float("inf"), 0.0, before, []
    for i in range(waves):
        w_first, w_last, w_peak = await wave(host, port, n, pid)
        first, last, peak = min(first, w_first), max(last, w_last), max(peak, w_peak)
        # The allocator gives pages back a little after they are freed;
        # after the last wave, a few seconds show what lasts.
        await asyncio.sleep(1.0 if i + 1 < waves else 5.0)
        after.append(rss_mib(pid))
    print(
        f"connections={n} waves={waves} closed_first_s={first:.2f} closed_last_s={last:.2f} "
        f"rss_before_mib={before:.1f} rss_peak_mib={peak:.1f} rss_after_mib={'/'.join(f'{a:.1f}' for a in after)}"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
