"""Outbound webhook fan-out, measured from outside (bench/webhooks.sh runs it).

Three receivers on loopback (asyncio, HTTP/1.1 keep-alive): two answer at once, one after
200 ms. N events are written through the service's own API (each launch token minted is one
`launch_token.created` event, sent to every endpoint), by 8 clients; then the receivers are
watched until both fast ones have every event. Printed: the events-written rate, each endpoint's
deliveries a second over the same clock (from the first write to its last delivery), and at the
end each endpoint's oldest undelivered event's age.

    python3 bench/webhook_fanout.py BASE_URL API_KEY N PORT_FAST1 PORT_FAST2 PORT_SLOW
"""
import asyncio, http.client, json, sys, threading, time
from urllib.parse import urlparse

base, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ports = [int(p) for p in sys.argv[4:7]]
names = ["fast-1", "fast-2", "slow (200 ms)"]
delays = [0.0, 0.0, 0.2]
written_at = {}            # user id -> when its event was written (the answer came back)
received = [dict() for _ in ports]   # user id -> when the endpoint got it
duplicates = [0 for _ in ports]


async def serve(index, reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            if delays[index]:
                await asyncio.sleep(delays[index])
            user = json.loads(body)["data"]["launchToken"]["userId"]
            if user in received[index]:
                duplicates[index] += 1
            received[index][user] = time.monotonic()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def receivers():
    loop = asyncio.new_event_loop()
    async def main():
        for i, port in enumerate(ports):
            await asyncio.start_server(lambda r, w, i=i: serve(i, r, w), "127.0.0.1", port)
        await asyncio.Event().wait()
    loop.run_until_complete(main())


threading.Thread(target=receivers, daemon=True).start()
time.sleep(0.5)

url = urlparse(base)
def client(first, count):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for i in range(first, first + count):
        user = f"bench-{i}"
        conn.request("POST", f"/v1/users/{user}/launch-tokens", body=b"{}",
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        if answer.status != 201:
            sys.exit(f"minting a launch token answered {answer.status}")
        written_at[user] = time.monotonic()

start = time.monotonic()
clients = 8
threads = [threading.Thread(target=client, args=(c * (n // clients), n // clients)) for c in range(clients)]
[t.start() for t in threads]
[t.join() for t in threads]
total = (n // clients) * clients
written = time.monotonic()
write_rate = total / (written - start)

deadline = written + float(__import__("os").environ.get("WAIT", "600"))
while time.monotonic() < deadline and any(len(received[i]) < total for i in (0, 1)):
    time.sleep(0.05)
end = time.monotonic()

print(f"events written: {total} in {written - start:.1f} s ({write_rate:.0f}/s, 8 clients)")
for i, name in enumerate(names):
    got = received[i]
    last = max(got.values()) if got else end
    rate = len(got) / max(last - start, 1e-9)
    waiting = [written_at[u] for u in written_at if u not in got]
    oldest = f"{end - min(waiting):.1f} s" if waiting else "none"
    lags = sorted(got[u] - written_at[u] for u in got if u in written_at)
    p99 = f"{lags[int(len(lags) * 0.99) - 1] * 1000:.0f} ms" if lags else "-"
    print(f"  {name:14} {len(got):6} delivered, {rate:7.0f}/s ({rate / write_rate:.2f} of the written rate), "
          f"p99 from written to delivered {p99}, oldest undelivered at the end: {oldest}"
          + (f", {duplicates[i]} twice" if duplicates[i] else ""))
if any(len(received[i]) < total for i in (0, 1)):
    sys.exit("the fast endpoints did not get every event in time")
