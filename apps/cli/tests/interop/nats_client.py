"""A NATS user's client, with nats-py (NATS's own Python client), against `fibrpc serve
--transport nats`. One line per question asked, for the Rust test to check:

  plain <answer>             a request to the queue's subject: no headers, the decimal n
  named <answer>             a request to the subject of the procedure `fib` (<queue>.fib)
  header <answer>            a request to the queue naming the procedure in a header
  error <code> <message>     a request above the server's bound: the services API's error
                             headers of the error reply
  PING|INFO|STATS <json>     the NATS services API ($SRV.<verb>, .<name>, .<name>.<id>)
  shared <count>             `count` plain requests answered (for two servers sharing them)
  jetstream <subject> <what> a request to the queue of a JetStream-mode server, and to its
                             stream's subject: what came back (answer, publish-ack,
                             no-responders or timeout)
"""

import asyncio
import json
import sys

import nats
from nats.errors import NoRespondersError, TimeoutError

URL = "nats://127.0.0.1:4222"


async def services(nc, name):
    for verb in ["PING", "INFO", "STATS"]:
        ping = json.loads((await nc.request(f"$SRV.PING.{name}", b"", timeout=5)).data)
        for subject in [f"$SRV.{verb}", f"$SRV.{verb}.{name}", f"$SRV.{verb}.{name}.{ping['id']}"]:
            # $SRV.<verb> alone is answered by every service: wait for ours among them.
            inbox = nc.new_inbox()
            answers = await nc.subscribe(inbox)
            await nc.publish(subject, b"", reply=inbox)
            while True:
                answer = json.loads((await answers.next_msg(timeout=5)).data)
                if answer["name"] == name:
                    break
            await answers.unsubscribe()
        print(verb, json.dumps(answer), flush=True)


async def main(mode, queue, count):
    nc = await nats.connect(URL)
    if mode == "serve":
        print("plain", (await nc.request(queue, b"30", timeout=5)).data.decode())
        print("named", (await nc.request(f"{queue}.fib", b"10", timeout=5)).data.decode())
        named = await nc.request(queue, b"20", timeout=5, headers={"Fibrpc-Procedure": "fib"})
        print("header", named.data.decode())
        refused = await nc.request(f"{queue}.fib", b"1000001", timeout=5)
        print("error", refused.headers["Nats-Service-Error-Code"],
              refused.headers["Nats-Service-Error"])
        await services(nc, queue.replace(".", "_"))
    elif mode == "shared":
        replies = await asyncio.gather(*(nc.request(queue, b"25", timeout=5) for _ in range(count)))
        assert all(reply.data == b"75025" for reply in replies), replies
        print("shared", len(replies))
    elif mode == "jetstream":
        for subject in [queue, f"fibrpc.req.{queue}"]:
            try:
                reply = await nc.request(subject, b"30", timeout=2)
                body = reply.data.decode()
                kind = "publish-ack" if '"stream"' in body and '"seq"' in body else "answer"
                print("jetstream", subject, kind, body)
            except NoRespondersError:
                print("jetstream", subject, "no-responders")
            except TimeoutError:
                print("jetstream", subject, "timeout")
        # The stream outlives its server: remove it (and the request stored above).
        await nc.jetstream().delete_stream("FIBRPC_" + "".join(
            c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in queue))
    await nc.close()


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0))
