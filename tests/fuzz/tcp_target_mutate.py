#!/usr/bin/env python3
"""Hostile-host mutation attacker for Ferry's NVMe/TCP target (manual tool, not run by CI).

Speaks enough valid NVMe/TCP to get deep (ICReq with digests and HPDA, Fabrics Connect of the
admin queue with 1024-byte in-capsule Connect data, Property Set CC.EN=1, Identify, Connect of
an I/O queue, writes with in-capsule data and with R2T/H2CData, reads), then replays that
conversation with one PDU mutated (bit flips, byte replacements, field rewrites of the PDU
header / SGL / SQE / Connect data, truncation, duplication), random split points, slow drip,
half-closed sockets, abandoned connections, huge PLEN, connection floods.

After every case it checks: the target is alive, its stderr has no sanitizer report, any
C2HTermReq it sent is well formed (hlen 24, FES 1..6) and the connection closes after it,
and a fresh healthy association still connects and does a verified write+read within 2 s.

Run (from the source tree, after building ferry-nvmf-tgt, ideally with -DFERRY_SANITIZE=ON):

    python3 tests/fuzz/tcp_target_mutate.py --tgt BUILD/bin/ferry-nvmf-tgt --seed 1 --cases 500

Failing cases are written as raw host-to-target streams into --out (default ./mutate-out/),
ready to be copied into tests/fuzz/corpus/tcp_target/ (replayed by test_tcp_corpus).
Exit status 1 when something broke.
"""
import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time

NQN = "nqn.2026-12.io.ferry:tgt"
HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:ferry-mutate"

_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Closed(Exception):
    pass


def sgl_icd(length):
    return struct.pack("<QI3xB", 0, length, 0x01)


def sgl_transport(length):
    return struct.pack("<QI3xB", 0, length, 0x5A)


def sqe(opc, cid, nsid=0, sgl=None, cdw=(0, 0, 0, 0, 0, 0), fctype=0, flags=0x40):
    b = bytearray(64)
    b[0] = opc
    b[1] = flags
    struct.pack_into("<H", b, 2, cid)
    if opc == 0x7F:
        b[4] = fctype
    else:
        struct.pack_into("<I", b, 4, nsid)
    if sgl is not None:
        b[24:40] = sgl
    struct.pack_into("<6I", b, 40, *cdw)
    return b


def connect_sqe(cid, qid, sqsize, kato, length=1024):
    b = sqe(0x7F, cid, sgl=sgl_icd(length), fctype=0x01)
    struct.pack_into("<HHHBxI", b, 40, 0, qid, sqsize, 0, kato)
    return b


def connect_data(cntlid):
    d = bytearray(1024)
    d[0:16] = b"ferry-mutate-hid"
    struct.pack_into("<H", d, 16, cntlid)
    d[256:256 + len(NQN)] = NQN.encode()
    d[512:512 + len(HOSTNQN)] = HOSTNQN.encode()
    return d


def prop_set_sqe(cid, off, val, size8=False):
    b = sqe(0x7F, cid, fctype=0x00)
    b[40] = 1 if size8 else 0
    struct.pack_into("<IQ", b, 44, off, val)
    return b


class Conn:
    """One host connection; every PDU it sends is also appended to self.stream."""

    def __init__(self, port, hdgst=False, ddgst=False, hpda=0, timeout=2.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hd, self.dd, self.hpda = hdgst, ddgst, hpda
        self.stream = bytearray()
        self.cid = 0
        self.ttag = {}
        self.mutator = None  # callable(bytes) -> list of chunks or None
        self.drip = False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    # ---- framing
    def pdu(self, typ, flags, hdr_rest, data=b"", hd=None, dd=None):
        hd = self.hd if hd is None else hd
        dd = self.dd if dd is None else dd
        hlen = 8 + len(hdr_rest)
        if hd:
            flags |= 0x01
        if dd and data:
            flags |= 0x02
        pdo = 0
        hl = hlen + (4 if hd else 0)
        if data:
            pdo = hl  # cpda 0
        plen = hl + len(data) + (4 if dd and data else 0)
        h = struct.pack("<BBBBI", typ, flags, hlen, pdo, plen) + bytes(hdr_rest)
        out = bytearray(h)
        if hd:
            out += struct.pack("<I", crc32c(h))
        out += data
        if dd and data:
            out += struct.pack("<I", crc32c(data))
        return bytes(out)

    def send(self, b):
        chunks = [b]
        if self.mutator is not None:
            m = self.mutator(b)
            if m is not None:
                chunks = m
        for ch in chunks:
            if ch is None:  # marker: half close
                self.s.shutdown(socket.SHUT_WR)
                continue
            self.stream += ch
            if self.drip:
                for i in range(len(ch)):
                    self.s.sendall(ch[i:i + 1])
            else:
                self.s.sendall(ch)

    def recvn(self, n):
        b = bytearray()
        while len(b) < n:
            try:
                x = self.s.recv(n - len(b))
            except socket.timeout:
                raise Closed("timeout")
            except OSError as e:
                raise Closed(str(e))
            if not x:
                raise Closed("eof")
            b += x
        return bytes(b)

    def recv_pdu(self):
        h = self.recvn(8)
        typ, flags, hlen, pdo, plen = struct.unpack("<BBBBI", h)
        if plen < 8 or plen > (1 << 20):
            raise Proto("target sent plen %d type %d" % (plen, typ))
        rest = self.recvn(plen - 8)
        full = h + rest
        if typ == 3:
            check_termreq(full)
            raise TermReq(struct.unpack_from("<H", full, 8)[0], full)
        hd_len = 4 if (flags & 0x01) else 0
        hdr = full[:hlen]
        data = b""
        if pdo:
            end = plen - (4 if flags & 0x02 else 0)
            data = full[pdo:end]
            if flags & 0x02 and crc32c(data) != struct.unpack_from("<I", full, end)[0]:
                raise Proto("bad data digest from target")
        if hd_len and crc32c(hdr) != struct.unpack_from("<I", full, hlen)[0]:
            raise Proto("bad header digest from target")
        return typ, flags, hdr, data

    # ---- protocol
    def icreq(self):
        rest = struct.pack("<HBBI", 0, self.hpda, (1 if self.hd else 0) | (2 if self.dd else 0), 0)
        rest += bytes(128 - 8 - len(rest))
        self.send(self.pdu(0, 0, rest, hd=False, dd=False))
        typ, flags, hdr, _ = self.recv_pdu()
        if typ != 1 or len(hdr) != 128:
            raise Proto("ICResp expected, got type %d" % typ)
        self.maxh2c = struct.unpack_from("<I", hdr, 12)[0]

    def next_cid(self):
        self.cid = (self.cid + 1) & 0xFFFF
        return self.cid

    def capsule(self, s, data=b""):
        self.send(self.pdu(4, 0, s, data))

    def wait_resp(self, cid, want_data=0, h2c=None):
        """Reads PDUs until the CapsuleResp of cid (or C2HData with SUCCESS). Returns (status,
        dw0, data)."""
        got = bytearray()
        while True:
            typ, flags, hdr, data = self.recv_pdu()
            if typ == 5:
                cqe = hdr[8:24]
                dw0 = struct.unpack_from("<I", cqe, 0)[0]
                st = struct.unpack_from("<H", cqe, 14)[0] >> 1
                return st, dw0, bytes(got)
            if typ == 7:
                c, _, datao, datal = struct.unpack_from("<HHII", hdr, 8)
                if datao != len(got) or datal != len(data):
                    raise Proto("C2HData datao %d datal %d got %d" % (datao, datal, len(data)))
                got += data
                if flags & 0x08:
                    return 0, 0, bytes(got)
            elif typ == 9:
                c, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
                if h2c is None:
                    raise Proto("unexpected R2T")
                self.h2c(c, ttag, r2to, h2c[r2to:r2to + r2tl])
            else:
                raise Proto("unexpected PDU type %d" % typ)

    def h2c(self, cccid, ttag, off, data):
        step = max(512, min(self.maxh2c, 8192))
        pos = 0
        while pos < len(data):
            n = min(step, len(data) - pos)
            last = 0x04 if pos + n == len(data) else 0
            rest = struct.pack("<HHIII", cccid, ttag, off + pos, n, 0)
            self.send(self.pdu(6, last, rest, data[pos:pos + n]))
            pos += n

    def connect(self, qid, cntlid, sqsize=31):
        cid = self.next_cid()
        self.capsule(connect_sqe(cid, qid, sqsize, 0 if qid else 30000), connect_data(cntlid))
        st, dw0, _ = self.wait_resp(cid)
        if st:
            raise Proto("Connect qid %d failed status 0x%x dw0 0x%x" % (qid, st, dw0))
        return dw0 & 0xFFFF

    def admin(self, s, want=0, data=b""):
        self.capsule(s, data)
        return self.wait_resp(struct.unpack_from("<H", s, 2)[0], want)

    def write(self, nsid, slba, data, icd):
        cid = self.next_cid()
        nlb = len(data) // 512 - 1
        s = sqe(0x01, cid, nsid, sgl_icd(len(data)) if icd else sgl_transport(len(data)),
                (slba & 0xFFFFFFFF, slba >> 32, nlb, 0, 0, 0))
        if icd:
            self.capsule(s, data)
            return self.wait_resp(cid)[0]
        self.capsule(s)
        return self.wait_resp(cid, h2c=data)[0]

    def read(self, nsid, slba, nbytes):
        cid = self.next_cid()
        s = sqe(0x02, cid, nsid, sgl_transport(nbytes),
                (slba & 0xFFFFFFFF, slba >> 32, nbytes // 512 - 1, 0, 0, 0))
        self.capsule(s)
        st, _, d = self.wait_resp(cid)
        return st, d


class Proto(Exception):
    pass


class TermReq(Exception):
    def __init__(self, fes, pdu):
        super().__init__("C2HTermReq fes %d" % fes)
        self.fes = fes
        self.pdu = pdu


def check_termreq(p):
    typ, flags, hlen, pdo, plen = struct.unpack_from("<BBBBI", p, 0)
    fes = struct.unpack_from("<H", p, 8)[0]
    if hlen != 24 or pdo not in (0, 24) or plen < 24 or plen > 24 + 152 or fes < 1 or fes > 6:
        raise Proto("malformed C2HTermReq hlen %d pdo %d plen %d fes %d" % (hlen, pdo, plen,
                                                                             fes))


def session(c, rng, deep=True):
    """The valid conversation. Raises on anything unexpected."""
    c.icreq()
    cntlid = c.connect(0, 0xFFFF)
    cid = c.next_cid()
    c.admin(prop_set_sqe(cid, 0x14, (6 << 16) | (4 << 20) | 1))
    for cns in (1, 0, 2):
        cid = c.next_cid()
        c.admin(sqe(0x06, cid, 1 if cns == 0 else 0, sgl_transport(4096), (cns, 0, 0, 0, 0, 0)))
    cid = c.next_cid()
    c.admin(sqe(0x02, cid, 0xFFFFFFFF, sgl_transport(512), (0x01 | (127 << 16), 0, 0, 0, 0, 0)))
    cid = c.next_cid()
    c.admin(sqe(0x09, cid, 0, None, (0x07, 0x00030003, 0, 0, 0, 0)))
    cid = c.next_cid()
    c.admin(sqe(0x18, cid))
    return cntlid


def io_session(q, cntlid, rng, slba_base):
    q.icreq()
    q.connect(1, cntlid, 31)
    blk = bytes(rng.getrandbits(8) for _ in range(4096))
    if q.write(1, slba_base, blk, True):
        raise Proto("ICD write failed")
    big = bytes(rng.getrandbits(8) for _ in range(16384))
    if q.write(1, slba_base + 8, big, False):
        raise Proto("R2T write failed")
    st, d = q.read(1, slba_base, 4096 + 16384)
    if st or d != blk + big:
        raise Proto("read back mismatch st %x" % st)


# ---- mutations
FIELDS_HDR = [("plen", 4, 4), ("hlen", 2, 1), ("pdo", 3, 1), ("flags", 1, 1), ("type", 0, 1)]


def mutate_bytes(rng, b):
    b = bytearray(b)
    kind = rng.randrange(14)
    desc = ""
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        desc = "bitflip"
    elif kind == 1:
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        desc = "bytes"
    elif kind == 2:
        name, off, n = rng.choice(FIELDS_HDR)
        val = rng.choice([0, 1, 7, 8, 23, 24, 25, 72, 128, 255, 0xFFFF, 0xFFFFFFFF,
                          rng.randrange(1 << (8 * n))]) & ((1 << (8 * n)) - 1)
        b[off:off + n] = val.to_bytes(n, "little")
        desc = "hdr." + name
    elif kind == 3 and len(b) >= 24 and b[0] == 6:
        name, off, n = rng.choice([("cccid", 8, 2), ("ttag", 10, 2), ("datao", 12, 4),
                                   ("datal", 16, 4)])
        val = rng.choice([0, 1, 511, 4096, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF,
                          rng.randrange(1 << (8 * n))]) & ((1 << (8 * n)) - 1)
        b[off:off + n] = val.to_bytes(n, "little")
        desc = "h2c." + name
    elif kind in (4, 5) and len(b) >= 72 and b[0] == 4:
        # SQE fields (at byte 8): opcode, flags (fused/PSDT), cid, nsid, SGL, CDW10-15
        name, off, n = rng.choice([("opc", 8, 1), ("flags", 9, 1), ("cid", 10, 2),
                                   ("nsid", 12, 4), ("sgl.addr", 32, 8), ("sgl.len", 40, 4),
                                   ("sgl.type", 47, 1), ("cdw10", 48, 4), ("cdw11", 52, 4),
                                   ("cdw12", 56, 4), ("cdw13", 60, 4), ("cdw14", 64, 4),
                                   ("cdw15", 68, 4), ("fctype", 12, 1)])
        val = rng.choice([0, 1, 2, 0x10, 0x40, 0x5A, 0x7F, 0x80, 0xC1, 0xFF, 0xFFFF,
                          0xFFFFFFFF, 0x80000000, rng.randrange(1 << (8 * n))])
        val &= (1 << (8 * n)) - 1
        b[off:off + n] = val.to_bytes(n, "little")
        desc = "sqe." + name
    elif kind == 6 and len(b) >= 72 + 1024 and b[0] == 4 and b[8] == 0x7F:
        pdo = b[3]
        sub = rng.randrange(4)
        if sub == 0:  # subnqn without NUL
            b[pdo + 256:pdo + 512] = b"A" * 256
        elif sub == 1:
            b[pdo + 512:pdo + 768] = b"B" * 256
        elif sub == 2:
            struct.pack_into("<H", b, pdo + 16, rng.choice([0, 1, 0xFFFE, rng.randrange(65536)]))
        else:
            b[pdo + 256:pdo + 256 + 256] = bytes(256)
        desc = "connect_data.%d" % sub
    elif kind == 7:
        cut = rng.randrange(1, len(b))
        b = b[:cut]
        desc = "truncate@%d" % cut
    elif kind == 8:
        return [bytes(b), bytes(b)], "duplicate"
    elif kind == 9:
        pts = sorted(rng.sample(range(1, len(b)), min(len(b) - 1, rng.randint(1, 5))))
        out, prev = [], 0
        for p in pts:
            out.append(bytes(b[prev:p]))
            prev = p
        out.append(bytes(b[prev:]))
        # split only is valid; add a bit flip as well half of the time
        if rng.random() < 0.5:
            j = rng.randrange(len(out))
            x = bytearray(out[j])
            if x:
                x[rng.randrange(len(x))] ^= 1 << rng.randrange(8)
            out[j] = bytes(x)
            return out, "split+flip"
        return out, "split"
    elif kind == 10:
        cut = rng.randrange(1, len(b))
        return [bytes(b[:cut]), None], "halfclose@%d" % cut
    elif kind == 11:
        struct.pack_into("<I", b, 4, rng.choice([0xFFFFFFFF, 1 << 24, 1 << 20, 70000]))
        return [bytes(b[:rng.randrange(8, len(b) + 1)])], "hugeplen"
    elif kind == 12:
        extra = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        return [bytes(b) + extra], "trailing"
    else:
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
        desc = "insert"
    return [bytes(b)], desc


class Target:
    def __init__(self, path, port, extra):
        self.dir = tempfile.mkdtemp(prefix="ferry-mutate-")
        self.errf = os.path.join(self.dir, "stderr")
        ready = os.path.join(self.dir, "ready")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.p = subprocess.Popen([path, "-a", "127.0.0.1:%d" % port, "-n", NQN, "--ns",
                                   "malloc:16M:512", "--ready-file", ready, "--quiet"] + extra,
                                  stdout=subprocess.DEVNULL, stderr=open(self.errf, "wb"),
                                  env=env)
        self.port = port
        end = time.time() + 20
        while not os.path.exists(ready) or os.path.getsize(ready) == 0:
            if self.p.poll() is not None or time.time() > end:
                raise SystemExit("target did not start: " + self.stderr())
            time.sleep(0.05)

    def stderr(self):
        with open(self.errf, "rb") as f:
            return f.read().decode(errors="replace")

    def sanitizer(self):
        e = self.stderr()
        for k in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "SUMMARY:"):
            if k in e:
                return e[e.find(k) - 200 if e.find(k) > 200 else 0:][:4000]
        return None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                return "target did not exit on SIGTERM"
        if self.p.returncode not in (0, -15):
            return "target exit status %d" % self.p.returncode
        return None


def healthy(port, rng, slba):
    t0 = time.time()
    a = Conn(port, timeout=2.0)
    q = Conn(port, timeout=2.0)
    try:
        a.icreq()
        cntlid = a.connect(0, 0xFFFF)
        cid = a.next_cid()
        a.admin(prop_set_sqe(cid, 0x14, (6 << 16) | (4 << 20) | 1))
        io_session(q, cntlid, rng, slba)
    finally:
        q.close()
        a.close()
    if time.time() - t0 > 2.0:
        raise Proto("healthy association took %.2f s" % (time.time() - t0))


def attack_case(port, rng, n):
    """One mutated conversation. Returns (description, stream)."""
    hd, dd = rng.random() < 0.4, rng.random() < 0.4
    hpda = rng.choice([0, 0, 0, 1, 3, 31])
    a = Conn(port, hd, dd, hpda, timeout=0.5)
    q = None
    state = {"i": 0, "at": None, "desc": None}
    target_idx = rng.randrange(16)
    a.drip = rng.random() < 0.05

    def mut(b):
        state["i"] += 1
        if state["i"] - 1 != target_idx:
            return None
        chunks, desc = mutate_bytes(rng, b)
        state["desc"] = desc + " of pdu type %d (#%d)" % (b[0], target_idx)
        return chunks

    a.mutator = mut
    result = "ok"
    try:
        cntlid = session(a, rng)
        q = Conn(port, hd, dd, hpda, timeout=0.5)
        q.mutator = mut
        q.drip = a.drip
        io_session(q, cntlid, rng, (n % 1000) * 40)
    except TermReq as e:
        result = "termreq fes %d" % e.fes
        # the connection must close after a TermReq
        s = q if q is not None and isinstance(e, TermReq) and q.stream else a
        try:
            s.s.settimeout(1.0)
            while s.s.recv(4096):
                pass
        except socket.timeout:
            raise Proto("connection still open 1 s after C2HTermReq (%s)" % state["desc"])
        except OSError:
            pass
    except (Closed, Proto, OSError) as e:
        result = "stop: %s" % e
    finally:
        stream = bytes(a.stream) + (bytes(q.stream) if q else b"")
        if rng.random() < 0.1:
            pass  # abandon without close: the socket objects just go away below
        a.close()
        if q:
            q.close()
    return "%s -> %s" % (state["desc"], result), stream, a, q


ADMIN_OPS = [0x02, 0x06, 0x09, 0x0A, 0x18, 0x0C, 0x10, 0x11, 0x04, 0x05, 0x00, 0x01, 0x08,
             0x14, 0x19, 0x7C, 0x7F, 0x80, 0x81, 0xC0, 0xFF, 0x0D, 0x15]
IO_OPS = [0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x0E, 0x11, 0x15, 0x19, 0x7F,
          0x80, 0x81, 0xFF]


def rnd32(rng):
    return rng.choice([0, 1, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                       rng.randrange(1 << 32), rng.randrange(256), rng.randrange(1 << 16) << 16])


def storm_cmd(c, rng, admin):
    """One well-framed command with hostile SQE fields. Checks the answer is framed right:
    C2HData within the SGL length, R2T within it, then exactly one completion."""
    opc = rng.choice(ADMIN_OPS if admin else IO_OPS)
    cid = c.next_cid()
    nsid = rng.choice([0, 1, 1, 2, 0xFFFFFFFF, 0xFFFFFFFE, rng.randrange(1 << 32)])
    cdw = [rnd32(rng) for _ in range(6)]
    if opc == 0x02 and admin:  # Get Log Page: a known LID, hostile NUMD / offset
        cdw[0] = rng.choice([1, 2, 3, 5, 0x70, 0x7F, 0x80, rng.randrange(256)]) | \
            (rng.randrange(1 << 16) << 16)
    if opc == 0x06 and admin:  # Identify: CNS
        cdw[0] = rng.choice([0, 1, 2, 3, 5, 6, 0x10, 0x11, 0x12, 0x13, rng.randrange(256)]) | \
            (rng.randrange(1 << 16) << 16)
    if opc in (0x01, 0x02) and not admin:
        cdw[0] = rng.choice([0, 32760, 32767, 32768, 0xFFFFFFFF, rng.randrange(32768)])
        cdw[1] = rng.choice([0, 0, 0, 1, 0xFFFFFFFF])
        cdw[2] = rng.choice([0, 7, 31, 255, 0xFFFF, rng.randrange(1 << 16)]) | \
            (rng.choice([0, 0, 0, 0x8000, 0x4000, 0x0400, 0x0800, 0x1000]) << 16)
    flags = rng.choice([0x40, 0x40, 0x40, 0x00, 0x80, 0xC0, 0x41, 0x42, 0x43])
    dirn = opc & 3
    ln = rng.choice([0, 4, 512, 1024, 4096, 4096, 8192, 16384, 65536, 131072, 131076,
                     rng.randrange(1 << 17) & ~3])
    icd = dirn == 1 and ln <= 8192 and rng.random() < 0.5
    sgl = sgl_icd(ln) if icd else sgl_transport(ln)
    if rng.random() < 0.1:
        sgl = bytes(rng.getrandbits(8) for _ in range(16))
    b = sqe(opc, cid, nsid, sgl, cdw, flags=flags)
    if opc == 0x7F:
        b[4] = rng.choice([0x00, 0x01, 0x04, 0x05, 0x06, 0x08, 0x7F, rng.randrange(256)])
    if opc == 0x7F:
        dirn = b[4] & 3
    data = bytes(rng.getrandbits(8) for _ in range(ln)) if icd else b""
    c.capsule(b, data)
    got = 0
    sgl_len = struct.unpack_from("<I", b, 32)[0]
    while True:
        typ, fl, hdr, d = c.recv_pdu()
        if typ == 5:
            ccid = struct.unpack_from("<H", hdr, 8 + 12)[0]
            if ccid != cid:
                raise Proto("CapsuleResp for cid %d, sent %d (opc 0x%x)" % (ccid, cid, opc))
            return opc
        if typ == 7:
            ccid, _, datao, datal = struct.unpack_from("<HHII", hdr, 8)
            if ccid != cid or datao != got or datao + datal > sgl_len:
                raise Proto("C2HData cid %d datao %d datal %d for opc 0x%x cid %d sgl len %d"
                            % (ccid, datao, datal, opc, cid, sgl_len))
            got += datal
            if fl & 0x08:
                return opc
        elif typ == 9:
            ccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
            if ccid != cid or r2to + r2tl > sgl_len or dirn != 1:
                raise Proto("R2T cid %d %d+%d for opc 0x%x sgl len %d" % (ccid, r2to, r2tl,
                                                                           opc, sgl_len))
            c.h2c(ccid, ttag, r2to, bytes(r2tl))
        else:
            raise Proto("PDU type %d answering opc 0x%x" % (typ, opc))


def storm_case(port, rng, n):
    hd, dd = rng.random() < 0.3, rng.random() < 0.3
    a = Conn(port, hd, dd, 0, timeout=2.0)
    q = None
    done = []
    try:
        cntlid = session(a, rng)
        q = Conn(port, hd, dd, 0, timeout=2.0)
        q.icreq()
        q.connect(1, cntlid, 31)
        for _ in range(rng.randint(5, 40)):
            admin = rng.random() < 0.5
            done.append(storm_cmd(a if admin else q, rng, admin))
        res = "ok"
    except TermReq as e:
        res = "termreq fes %d after %d valid-framed commands (suspicious)" % (e.fes, len(done))
    except Closed as e:
        res = "stop: %s after %d commands" % (e, len(done))
    except Proto as e:
        res = "PROTO %s" % e
    finally:
        stream = bytes(a.stream) + (bytes(q.stream) if q else b"")
        a.close()
        if q:
            q.close()
    return "storm -> " + res, stream


def race_case(port, rng, n):
    """Association teardown against I/O in flight: pipelined reads and writes (some R2T
    writes never get their data) on 1-3 I/O queues while the admin queue clears CC.EN, sets
    CC.SHN, sends Disconnect, or just closes; then the I/O queues keep sending."""
    a = Conn(port, timeout=1.0)
    qs = []
    try:
        a.icreq()
        cntlid = a.connect(0, 0xFFFF)
        a.admin(prop_set_sqe(a.next_cid(), 0x14, (6 << 16) | (4 << 20) | 1))
        for i in range(rng.randint(1, 3)):
            q = Conn(port, timeout=1.0)
            q.icreq()
            q.connect(i + 1, cntlid, rng.choice([1, 31, 127]))
            qs.append(q)

        def burst():
            for q in qs:
                for _ in range(rng.randint(0, 24)):
                    cid = q.next_cid()
                    ln = rng.choice([512, 4096, 65536, 131072])
                    op = rng.choice([1, 2])
                    icd = op == 1 and ln <= 8192 and rng.random() < 0.5
                    s = sqe(op, cid, 1, sgl_icd(ln) if icd else sgl_transport(ln),
                            (rng.randrange(30000), 0, ln // 512 - 1, 0, 0, 0))
                    q.capsule(s, bytes(ln) if icd else b"")
        burst()
        k = rng.randrange(5)
        if k == 0:
            a.capsule(prop_set_sqe(a.next_cid(), 0x14, 0))
        elif k == 1:
            a.capsule(prop_set_sqe(a.next_cid(), 0x14, (6 << 16) | (4 << 20) | 1 | (1 << 14)))
        elif k == 2:
            a.capsule(sqe(0x7F, a.next_cid(), fctype=0x08))
        elif k == 3:
            a.close()
        else:
            rng.choice(qs).capsule(sqe(0x7F, 9999, fctype=0x08))
        burst()
        time.sleep(rng.choice([0, 0.01, 0.1]))
        burst()
        res = "race %d" % k
    except (Closed, OSError, TermReq, Proto) as e:
        res = "race stop: %s" % e
    finally:
        a.close()
        for q in qs:
            q.close()
    return "race -> " + res


def flood(port, rng):
    socks = []
    for _ in range(rng.randint(20, 80)):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            k = rng.randrange(3)
            if k == 1:
                s.sendall(struct.pack("<BBBBI", 0, 0, 128, 0, 128) + bytes(rng.randrange(100)))
            elif k == 2:
                s.sendall(struct.pack("<BBBBI", 4, 0, 72, 72, 0xFFFFFFF0))
            socks.append(s)
        except OSError:
            break
    rng.shuffle(socks)
    for s in socks:
        s.close()
    return "flood %d" % len(socks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tgt", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--out", default="mutate-out")
    ap.add_argument("--args", default="")
    ap.add_argument("-p", type=int, default=1)
    ap.add_argument("-v", action="store_true", help="print every case")
    ap.add_argument("--only", choices=["race", "storm"], help="one kind of case only")
    ap.add_argument("--storm", type=int, default=1, help="hostile SQE fields in well-framed "
                    "commands (1) or not (0)")
    opt = ap.parse_args()
    port = opt.port
    if not port:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    extra = ["-p", str(opt.p)] + (["--args", opt.args] if opt.args else [])
    tgt = Target(opt.tgt, port, extra)
    rng = random.Random(opt.seed)
    os.makedirs(opt.out, exist_ok=True)
    bad = 0
    counts = {}
    t_end = time.time() + opt.seconds if opt.seconds else None
    n = 0
    while (t_end and time.time() < t_end) or (not t_end and n < opt.cases):
        n += 1
        fail = None
        stream = b""
        try:
            r = rng.random()
            if opt.only == "race":
                r = 0.1
            elif opt.only == "storm":
                r = 0.3
            if r < 0.03:
                desc = flood(port, rng)
            elif r < 0.15 and opt.storm:
                desc = race_case(port, rng, n)
            elif r < 0.40 and opt.storm:
                desc, stream = storm_case(port, rng, n)
                if "PROTO" in desc or "suspicious" in desc:
                    fail = desc
            else:
                desc, stream, _, _ = attack_case(port, rng, n)
        except Proto as e:
            desc, fail = "protocol", str(e)
        if opt.v:
            print(n, desc, flush=True)
        key = desc.split(" -> ")[-1].split(":")[0][:24]
        key = "flood" if key.startswith("flood") else key
        counts[key] = counts.get(key, 0) + 1
        if fail is None and tgt.p.poll() is not None:
            fail = "target died (status %s)" % tgt.p.returncode
        if fail is None:
            fail = tgt.sanitizer() and "sanitizer: " + tgt.sanitizer()
        if fail is None:
            try:
                healthy(port, rng, 20000 + (n % 64) * 40)
            except (Proto, Closed, TermReq, OSError) as e:
                fail = "healthy association failed: %s" % e
        if fail:
            bad += 1
            fn = os.path.join(opt.out, "seed%d_case%d" % (opt.seed, n))
            with open(fn, "wb") as f:
                f.write(stream)
            print("FAIL case %d: %s\n  %s\n  stream %s (%d bytes)" % (n, desc, fail, fn,
                                                                   len(stream)), flush=True)
            if tgt.p.poll() is not None or "sanitizer" in fail:
                print(tgt.stderr()[-6000:])
                break
    err = tgt.stop()
    if err:
        print("FAIL at exit:", err)
        bad += 1
    san = tgt.sanitizer()
    if san:
        print("FAIL sanitizer at exit:\n", san)
        bad += 1
    print("seed %d: %d cases, %d failures; outcomes: %s" % (opt.seed, n, bad, counts))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
