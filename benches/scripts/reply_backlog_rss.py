"""Peak RSS of a zab-server while one client sends 4,000 getData requests
for a 256 KiB node and reads none of the replies (BENCHMARKS.md, "Client
flow control"). Usage: python3 benches/scripts/reply_backlog_rss.py BINARY
"""
import socket, struct, subprocess, sys, time, os, tempfile, shutil
binary = sys.argv[1]
d = tempfile.mkdtemp(prefix="flowrss-")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cfg = os.path.join(d, "zoo.cfg")
open(cfg, "w").write(f"tickTime=2000\ndataDir={d}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
p = subprocess.Popen([binary, cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def rss(): return int([l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
deadline = time.time() + 20
while True:
    try: c = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.05)
def frame(b): return struct.pack(">i", len(b)) + b
def buf(b): return struct.pack(">i", len(b)) + b
def read_frame():
    n = b""
    while len(n) < 4: n += c.recv(4 - len(n))
    (l,) = struct.unpack(">i", n); out = b""
    while len(out) < l: out += c.recv(l - len(out))
    return out
c.sendall(frame(struct.pack(">iqiq", 0, 0, 30000, 0) + buf(b"\0" * 16) + b"\0")); read_frame()
value = b"v" * (256 << 10)
acl = struct.pack(">ii", 1, 31) + buf(b"world") + buf(b"anyone")
c.sendall(frame(struct.pack(">ii", 1, 1) + buf(b"/big") + buf(value) + acl + struct.pack(">i", 0))); read_frame()
before = rss()
reqs = b"".join(frame(struct.pack(">ii", x, 4) + buf(b"/big") + b"\0") for x in range(2, 4002))
c.sendall(reqs)
peak = before
for _ in range(30):
    time.sleep(0.1); peak = max(peak, rss())
print(f"{binary}: RSS before {before} MiB, peak over 3 s of a client reading nothing {peak} MiB")
p.kill(); p.wait(); shutil.rmtree(d)
