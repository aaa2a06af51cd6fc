#!/usr/bin/env python3
"""
A hostile NVMe/TCP controller for attacking Ferry's initiator (the nvmf bdev). A manual tool,
not run by CI. Python 3, standard library only.

It serves a correct conversation (ICResp, Connect with a cntlid, Property Get/Set of
CAP/VS/CC/CSTS, Identify Controller/Namespace/Active NS list, Set Features Number of Queues,
I/O queue Connect, Read via C2HData, Write via R2T + H2CData or in-capsule data, Flush) backed
by an in-memory disk, and then breaks it the way --mode says (see MODES below).

Run one controller:
    tests/fuzz/nvmf_host_mutate.py serve --mode c2h_overlap --port 4420
and drive it with the tool:
    build-asan/bin/ferry-nvmf-io -a 127.0.0.1:4420 -n nqn.fake --ios 200 --region 4194304

Run every mode against the tool (each bounded by a timeout) and print a verdict per mode:
    tests/fuzz/nvmf_host_mutate.py sweep --tool build-asan/bin/ferry-nvmf-io [--only M,...]
A mode FAILS the sweep on a crash (signal), a sanitizer report, a timeout, a MISMATCH (wrong
data reported as success), or an exit 0 where the mode's damage cannot have been repaired.
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import threading
import time

F_HDGST, F_DDGST, F_LAST, F_SUCCESS = 1, 2, 4, 8
ICREQ, ICRESP, H2CTERM, C2HTERM, CMD, RESP, H2CDATA, C2HDATA, R2T = 0, 1, 2, 3, 4, 5, 6, 7, 9

# mode -> what the tool must do: "pass" (exit 0, the violation is tolerated or repaired by
# a reconnect and retry), "fail" (exit != 0: cannot connect or I/O errors), "any" (either,
# never a crash, hang or mismatch).
MODES = {
    "none": "pass",
    "drip": "pass",
    "r2t_split": "pass",
    "sqid_wrong": "pass",
    "sqhd_wrong": "pass",
    # data-path violations: TermReq + reconnect, the I/O is retried (retry_count 3)
    "cid_wrong": "any", "cid_dup": "any", "c2h_datao_oob": "any", "c2h_overlap": "any",
    "c2h_gap": "any", "c2h_datal_big": "any", "c2h_short_success": "any",
    "success_no_last": "any", "resp_before_data": "any", "resp_short_read": "any",
    "c2h_for_write": "any", "plen_overlong": "any", "hlen_lie": "any", "pdo_lie": "any",
    "ddgst_flag": "any", "hdgst_flag": "any", "status_err": "any", "c2h_term": "any",
    "close_mid": "any", "r2t_for_read": "any", "r2t_beyond": "any", "r2t_zero": "any",
    "r2t_huge": "any", "r2t_multi": "any", "r2t_stale": "any", "resp_before_h2c": "any",
    "c2h_stale_cid": "any", "c2h_after_success": "any", "resp_twice_read": "any",
    "always_c2h_gap": "fail", "always_status_err": "fail",
    # identify / connect absurdities
    "lbaf_idx": "fail", "lbads0": "fail", "lbads30": "fail", "nsze0": "fail",
    "nsze_huge": "any", "mdts0": "pass", "mdts_huge": "pass", "mdts1_lbads16": "any",
    "ioccsz_small": "pass", "ioccsz_huge": "any", "maxh2c0": "fail", "pfv1": "fail",
    "cpda32": "fail", "cpda3": "pass", "mqes0": "any", "nq_huge": "pass", "nsid_none": "fail",
    "icresp_dgst": "fail", "icresp_short": "fail", "csts_cfs": "fail", "cntlid_ffff": "any",
    "drop_io": "any", "unknown_type": "any", "resp_plen_huge": "any", "icresp_again": "any",
    "c2h_term_big": "any", "resp_data": "any", "c2h_chunks": "pass", "c2h_zero_datal": "any",
    "identify_short": "fail", "identify_big": "fail", "csts_never": "fail", "h2c_type": "any",
    "c2h_hdr_only": "any", "close_after_resp": "any",
    # the reconnect after a drop meets a changed or silent controller: the I/O fails
    "bad_hdgst": "any", "bad_ddgst": "any", "bad_ddgst_success": "any", "no_ddgst": "any",
    "resp_during_h2c": "pass", "c2h_bytewise": "pass",
    "regeom": "fail", "nq_shrink": "fail", "reconnect_silent": "fail",
    "ms_ext": "any", "lbads16": "pass", "lbads9": "pass", "icd_big": "pass",
}


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_T = _crc_table()


def crc32c(b):
    c = 0xffffffff
    t = CRC_T
    for x in b:
        c = t[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff


def le16(b, o): return struct.unpack_from("<H", b, o)[0]
def le32(b, o): return struct.unpack_from("<I", b, o)[0]
def le64(b, o): return struct.unpack_from("<Q", b, o)[0]


class Ctrl:
    """Shared state of the fake subsystem: the disk and the mutation trigger."""

    def __init__(self, mode, trigger, lbads, nblocks):
        self.mode = mode
        self.trigger = trigger
        self.lbads = lbads
        self.bs = 1 << lbads
        self.nblocks = nblocks
        self.disk = bytearray(self.bs * nblocks)
        self.lock = threading.Lock()
        self.io_count = 0
        self.fired = False
        self.mdts = 5
        self.digests = False

    def fire(self, kinds):
        """True once (at the trigger-th I/O command) if the mode attacks this kind of I/O."""
        with self.lock:
            self.io_count += 1
            m = self.mode
            if m.startswith("always_"):
                return m[7:] in kinds
            if self.fired or m not in kinds or self.io_count < self.trigger:
                return False
            self.fired = True
            return True


READ_MODES = {"cid_wrong", "cid_dup", "c2h_datao_oob", "c2h_overlap", "c2h_gap", "c2h_datal_big",
              "c2h_short_success", "success_no_last", "resp_before_data", "resp_short_read",
              "plen_overlong", "hlen_lie", "pdo_lie", "ddgst_flag", "hdgst_flag", "status_err",
              "c2h_term", "close_mid", "r2t_for_read", "sqid_wrong", "sqhd_wrong", "drip",
              "c2h_stale_cid", "c2h_after_success", "resp_twice_read", "drop_io",
              "unknown_type", "resp_plen_huge", "icresp_again", "c2h_term_big", "resp_data",
              "c2h_chunks", "c2h_zero_datal", "h2c_type", "c2h_hdr_only", "close_after_resp",
              "regeom", "nq_shrink", "reconnect_silent", "bad_hdgst", "bad_ddgst",
              "bad_ddgst_success", "no_ddgst", "c2h_bytewise"}
WRITE_MODES = {"c2h_for_write", "r2t_beyond", "r2t_zero", "r2t_huge", "r2t_multi", "r2t_stale",
               "resp_before_h2c", "r2t_split", "resp_during_h2c"}


class Conn:
    def __init__(self, ctrl, sock):
        self.c = ctrl
        self.s = sock
        self.buf = b""
        self.qid = None
        self.cpda = 0
        self.host_cpda = 0
        self.hd = self.dd = False
        self.early = {}  # resp_during_h2c: completed writes whose data still comes
        self.writes = {}  # cid -> [slba, length, bytearray, received]
        self.ttag = 1
        self.sqhd = 0
        self.last_cid = None

    # ---- wire
    def send(self, b, drip=False):
        if drip:
            for i in range(0, len(b), 7):
                self.s.sendall(b[i:i + 7])
                time.sleep(0.0005)
        else:
            self.s.sendall(b)

    def recv_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_pdu(self):
        ch = self.recv_exact(8)
        plen = le32(ch, 4)
        if plen < 8 or plen > (1 << 24):
            raise EOFError
        return ch + self.recv_exact(plen - 8)

    # ---- builders
    def pdu(self, typ, flags, hdr_rest, data=b"", hlen=None, pdo=None, plen=None,
            bad_hdgst=False, bad_ddgst=False):
        h = 8 + len(hdr_rest) if hlen is None else hlen
        hd = self.hd and typ not in (ICRESP, C2HTERM)
        dd = self.dd and bool(data)
        flags |= (F_HDGST if hd else 0) | (F_DDGST if dd else 0)
        hsz = 8 + len(hdr_rest) + (4 if hd else 0)
        if data:
            align = (self.cpda + 1) * 4
            p = (hsz + align - 1) // align * align if pdo is None else pdo
            pad = b"\0" * max(0, p - hsz)
        else:
            p = 0 if pdo is None else pdo
            pad = b""
        tail = b""
        if dd:
            tail = struct.pack("<I", crc32c(data) ^ (1 if bad_ddgst else 0))
        pl = hsz + len(pad) + len(data) + len(tail) if plen is None else plen
        hdr = struct.pack("<BBBBI", typ, flags, h, p, pl) + hdr_rest
        if hd:
            hdr += struct.pack("<I", crc32c(hdr) ^ (1 if bad_hdgst else 0))
        return hdr + pad + data + tail

    def cqe(self, cid, status=0, dw0=0, dw1=0, sqid=None, sqhd=None):
        self.sqhd = (self.sqhd + 1) & 0xffff
        q = self.qid if sqid is None else sqid
        hd = self.sqhd if sqhd is None else sqhd
        return self.pdu(RESP, 0, struct.pack("<IIHHHH", dw0, dw1, hd, q, cid, status << 1))

    def c2h(self, cid, off, data, flags=0, datal=None, **kw):
        dl = len(data) if datal is None else datal
        rest = struct.pack("<HHIII", cid, 0, off, dl, 0)
        return self.pdu(C2HDATA, flags, rest, data, **kw)

    def r2t(self, cid, off, length, ttag=None):
        t = self.ttag if ttag is None else ttag
        return self.pdu(R2T, 0, struct.pack("<HHIII", cid, t, off, length, 0))

    # ---- conversation
    def run(self):
        try:
            self.icreq()
            while True:
                self.dispatch(self.recv_pdu())
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            try:
                self.s.close()
            except OSError:
                pass

    def icreq(self):
        p = self.recv_pdu()
        if p[0] != ICREQ:
            raise EOFError
        m = self.c.mode
        if m == "reconnect_silent" and self.c.fired:
            while self.s.recv(4096):
                pass
            raise EOFError
        pfv, cpda, dgst, maxh2c = 0, 0, 0, 131072
        if m == "pfv1": pfv = 1
        if m == "cpda32": cpda = 32
        if m == "cpda3": cpda = 3
        if m == "maxh2c0": maxh2c = 0
        if m == "icresp_dgst": dgst = 3
        if self.c.digests and m != "icresp_dgst":
            dgst = p[11] & 3
            self.hd, self.dd = bool(dgst & 1), bool(dgst & 2)
        # CPDA binds the host's data PDUs; ours follow the HPDA of the ICReq.
        self.host_cpda = cpda
        self.cpda = p[10] if p[10] <= 31 else 0
        r = struct.pack("<HBBI", pfv, cpda, dgst, maxh2c) + b"\0" * 112
        if m == "icresp_short":
            self.send(self.pdu(ICRESP, 0, r)[:60])
            self.s.shutdown(socket.SHUT_WR)
            raise EOFError
        self.send(self.pdu(ICRESP, 0, r))

    def dispatch(self, p):
        typ, flags, hlen, pdo, plen = struct.unpack_from("<BBBBI", p, 0)
        if typ == H2CTERM:
            raise EOFError
        if pdo and pdo % ((self.host_cpda + 1) * 4):
            sys.stderr.write("fake: host PDU type %d with PDO %d ignores CPDA %d\n" %
                             (typ, pdo, self.host_cpda))
            raise EOFError
        if typ == CMD:
            sqe = p[8:72]
            data = p[pdo:len(p) - (4 if flags & F_DDGST else 0)] if pdo else b""
            return self.command(sqe, data)
        if typ == H2CDATA:
            cid, ttag, off, dl = struct.unpack_from("<HHII", p, 8)
            w = self.writes.get(cid)
            if w is None and cid in self.early:
                self.early[cid][2][off:off + dl] = p[pdo:pdo + dl]
                self.early[cid][3] += dl
                if self.early[cid][3] >= self.early[cid][1]:
                    e = self.early.pop(cid)
                    self.c.disk[e[0]:e[0] + e[1]] = e[2][:e[1]]
                return
            if w is None:
                raise EOFError
            if flags & F_DDGST and le32(p, pdo + dl) != crc32c(p[pdo:pdo + dl]):
                sys.stderr.write("fake: the host's H2CData data digest is wrong\n")
                raise EOFError
            w[2][off:off + dl] = p[pdo:pdo + dl]
            w[3] += dl
            if w[3] >= w[1] and flags & F_LAST:
                del self.writes[cid]
                self.c.disk[w[0]:w[0] + w[1]] = w[2][:w[1]]
                self.send(self.cqe(cid))
            elif flags & F_LAST and w[4]:
                off2 = w[3]
                self.send(self.r2t(cid, off2, w[1] - off2))
            return
        raise EOFError

    def command(self, sqe, data):
        opc, fl, cid, nsid = struct.unpack_from("<BBHI", sqe, 0)
        cdw10, cdw11, cdw12 = struct.unpack_from("<III", sqe, 40)
        m = self.c.mode
        if opc == 0x7f:
            fct = sqe[4]
            if fct == 0x01:  # Connect
                qid = le16(sqe, 42)
                self.qid = qid
                cntlid = 0xffff if m == "cntlid_ffff" else 1
                return self.send(self.cqe(cid, dw0=cntlid))
            if fct == 0x04:  # Property Get
                off = le32(sqe, 44)
                v = 0
                if off == 0:  # CAP: MQES 127, CQR, TO 2 (1 s), CSS NVM
                    v = (0 if m == "mqes0" else 127) | (1 << 16) | (2 << 24) | (1 << 37)
                elif off == 8:
                    v = 0x10400
                elif off == 0x1c:
                    v = {"csts_cfs": 3, "csts_never": 0}.get(m, 1)
                return self.send(self.cqe(cid, dw0=v & 0xffffffff, dw1=v >> 32))
            return self.send(self.cqe(cid))  # Property Set and the rest
        if self.qid == 0:
            return self.admin(opc, cid, nsid, cdw10, cdw11)
        return self.io(opc, cid, nsid, cdw10, cdw11, cdw12, sqe, data)

    def admin(self, opc, cid, nsid, cdw10, cdw11):
        m = self.c.mode
        if opc == 0x06:  # Identify
            d = bytearray(4096)
            cns = cdw10 & 0xff
            if cns == 1:
                d[77] = {"mdts0": 0, "mdts_huge": 255, "mdts1_lbads16": 1}.get(m, self.c.mdts)
                struct.pack_into("<H", d, 78, 1)
                struct.pack_into("<I", d, 80, 0x10400)
                struct.pack_into("<H", d, 520, 0x0c)  # ONCS: write zeroes, DSM
                d[525] = 1
                struct.pack_into("<I", d, 536, 1)
                ioccsz = {"ioccsz_small": 3, "ioccsz_huge": 0x0fffffff,
                          "icd_big": 4 + 512}.get(m, 4 + 256)  # default: 4 KiB in capsule
                struct.pack_into("<II", d, 1792, ioccsz, 1)
            elif cns == 0:
                nsze = {"nsze0": 0, "nsze_huge": 1 << 63}.get(m, self.c.nblocks)
                if m == "regeom" and self.c.fired:
                    nsze -= 1
                struct.pack_into("<QQQ", d, 0, nsze, nsze, nsze)
                d[25] = 0  # NLBAF: one format
                d[26] = 0xf if m == "lbaf_idx" else 0
                lbads = {"lbads0": 0, "lbads30": 30, "mdts1_lbads16": 16}.get(m, self.c.lbads)
                ms = 8 if m == "ms_ext" else 0
                if m == "ms_ext":
                    d[26] |= 0x10
                struct.pack_into("<HBB", d, 128, ms, lbads, 0)
            elif cns == 2:
                if m != "nsid_none":
                    struct.pack_into("<I", d, 0, 1)
            if m == "identify_short":
                return self.send(self.c2h(cid, 0, bytes(d[:100]), F_LAST) + self.cqe(cid))
            if m == "identify_big":
                return self.send(self.c2h(cid, 0, bytes(d) * 2, F_LAST) + self.cqe(cid))
            return self.read_out(cid, bytes(d))
        if opc == 0x09:  # Set Features
            if (cdw10 & 0xff) == 0x07:
                v = 0xffffffff if m == "nq_huge" else cdw11
                if m == "nq_shrink" and self.c.fired:
                    v = 0
                return self.send(self.cqe(cid, dw0=v))
            return self.send(self.cqe(cid))
        return self.send(self.cqe(cid))  # keep-alive, the rest

    def read_out(self, cid, data):
        self.send(self.c2h(cid, 0, data, F_LAST) + self.cqe(cid))

    def io(self, opc, cid, nsid, cdw10, cdw11, cdw12, sqe, data):
        c = self.c
        slba = cdw10 | cdw11 << 32
        nlb = (cdw12 & 0xffff) + 1
        off = slba * c.bs
        length = nlb * c.bs
        if opc in (0x02, 0x01) and off + length > len(c.disk):
            return self.send(self.cqe(cid, status=0x80))  # LBA out of range
        if opc == 0x02:
            return self.read(cid, off, length, c.fire(READ_MODES))
        if opc == 0x01:
            if data:
                c.disk[off:off + length] = data[:length]
                return self.send(self.cqe(cid))
            return self.write(cid, off, length, c.fire(WRITE_MODES))
        return self.send(self.cqe(cid))

    def read(self, cid, off, ln, bad):
        c = self.c
        d = bytes(c.disk[off:off + ln])
        m = c.mode.replace("always_", "")
        h = ln // 2
        if not bad:
            if self.last_cid is None:
                self.last_cid = cid
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS))
        corrupt = bytes(x ^ 0xff for x in d)
        if m in ("drip",):
            return self.send(self.c2h(cid, 0, d, F_LAST) + self.cqe(cid), drip=True)
        if m == "cid_wrong":
            return self.send(self.c2h(cid ^ 0x4000, 0, d, F_LAST) + self.cqe(cid ^ 0x4000))
        if m == "c2h_stale_cid":
            return self.send(self.c2h(self.last_cid or 0, 0, corrupt, F_LAST | F_SUCCESS))
        if m == "cid_dup":
            return self.send(self.c2h(cid, 0, d, F_LAST) + self.cqe(cid) + self.cqe(cid))
        if m == "resp_twice_read":
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS) + self.cqe(cid))
        if m == "c2h_after_success":
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS) +
                             self.c2h(cid, 0, corrupt, F_LAST | F_SUCCESS))
        if m == "c2h_datao_oob":
            return self.send(self.c2h(cid, ln, d[:512], F_LAST | F_SUCCESS))
        if m == "c2h_overlap":
            return self.send(self.c2h(cid, 0, d[:h]) + self.c2h(cid, h // 2, corrupt[h // 2:],
                                                                 F_LAST | F_SUCCESS))
        if m == "c2h_gap":
            return self.send(self.c2h(cid, 0, d[:h]) + self.c2h(cid, h + 512, d[h + 512:],
                                                                 F_LAST | F_SUCCESS))
        if m == "c2h_datal_big":
            return self.send(self.c2h(cid, 0, d + corrupt, F_LAST | F_SUCCESS))
        if m == "c2h_short_success":
            return self.send(self.c2h(cid, 0, d[:h], F_LAST | F_SUCCESS))
        if m == "success_no_last":
            return self.send(self.c2h(cid, 0, d, F_SUCCESS))
        if m == "resp_before_data":
            return self.send(self.cqe(cid) + self.c2h(cid, 0, d, F_LAST))
        if m == "resp_short_read":
            return self.send(self.c2h(cid, 0, d[:h]) + self.cqe(cid))
        if m == "plen_overlong":
            p = self.c2h(cid, 0, d, F_LAST | F_SUCCESS)
            return self.send(p[:4] + struct.pack("<I", len(p) + 64) + p[8:] + corrupt[:64])
        if m == "hlen_lie":
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS, hlen=32))
        if m == "pdo_lie":
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS, pdo=64))
        if m == "ddgst_flag":
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS | F_DDGST))
        if m == "hdgst_flag":
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS | F_HDGST))
        if m == "status_err":
            return self.send(self.c2h(cid, 0, corrupt, F_LAST) + self.cqe(cid, status=0x281))
        if m == "sqid_wrong":
            return self.send(self.c2h(cid, 0, d, F_LAST) + self.cqe(cid, sqid=self.qid + 7))
        if m == "sqhd_wrong":
            return self.send(self.c2h(cid, 0, d, F_LAST) + self.cqe(cid, sqhd=0xfff0))
        if m == "c2h_term":
            t = struct.pack("<HI", 1, 0) + b"\0" * 10
            return self.send(self.pdu(C2HTERM, 0, t))
        if m == "close_mid":
            p = self.c2h(cid, 0, corrupt, F_LAST | F_SUCCESS)
            self.send(p[:len(p) // 2])
            raise EOFError
        if m == "bad_hdgst":
            return self.send(self.c2h(cid, 0, corrupt, F_LAST | F_SUCCESS, bad_hdgst=True))
        if m == "bad_ddgst":
            return self.send(self.c2h(cid, 0, d, F_LAST, bad_ddgst=True) + self.cqe(cid))
        if m == "bad_ddgst_success":
            return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS, bad_ddgst=True))
        if m == "no_ddgst":
            dd, self.dd = self.dd, False
            p = self.c2h(cid, 0, d, F_LAST | F_SUCCESS)
            self.dd = dd
            return self.send(p)
        if m == "c2h_bytewise":
            out = b"".join(self.c2h(cid, o, d[o:o + 1], F_LAST if o + 1 == ln else 0)
                           for o in range(ln))
            return self.send(out + self.cqe(cid))
        if m == "drop_io":
            return None
        if m == "unknown_type":
            return self.send(self.pdu(0x0b, 0, b"\0" * 16))
        if m == "resp_plen_huge":
            p = self.cqe(cid)
            return self.send(p[:4] + struct.pack("<I", 0xffffffff) + p[8:] + corrupt)
        if m == "icresp_again":
            return self.send(self.pdu(ICRESP, 0, struct.pack("<HBBI", 0, 0, 0, 131072) +
                                      b"\0" * 112))
        if m == "c2h_term_big":
            return self.send(self.pdu(C2HTERM, 0, struct.pack("<HI", 1, 0) + b"\0" * 10,
                                      plen=65536) + b"\xaa" * (65536 - 24))
        if m == "resp_data":
            p = self.c2h(cid, 0, d, F_LAST) + self.cqe(cid)
            q = p[:-24]
            r = p[-24:]
            return self.send(q + r[:4] + struct.pack("<I", 24 + 64) + r[8:] + corrupt[:64])
        if m == "c2h_chunks":
            out = b""
            for o in range(0, ln, 100):
                out += self.c2h(cid, o, d[o:o + 100], F_LAST if o + 100 >= ln else 0)
            return self.send(out + self.cqe(cid))
        if m == "c2h_zero_datal":
            return self.send(self.c2h(cid, 0, b"", 0) + self.c2h(cid, 0, d, F_LAST) +
                             self.cqe(cid))
        if m == "h2c_type":
            return self.send(self.pdu(H2CDATA, F_LAST, struct.pack("<HHIII", cid, 0, 0, ln, 0),
                                      d))
        if m == "c2h_hdr_only":
            p = self.c2h(cid, 0, d, F_LAST | F_SUCCESS)
            self.send(p[:24])
            time.sleep(3)
            raise EOFError
        if m == "close_after_resp":
            self.send(self.c2h(cid, 0, d, F_LAST) + self.cqe(cid))
            raise EOFError
        if m == "r2t_for_read":
            return self.send(self.r2t(cid, 0, ln))
        if m in ("regeom", "nq_shrink", "reconnect_silent"):
            raise EOFError
        return self.send(self.c2h(cid, 0, d, F_LAST | F_SUCCESS))

    def write(self, cid, off, ln, bad):
        m = self.c.mode
        self.ttag += 1
        w = [off, ln, bytearray(ln), 0, False]
        self.writes[cid] = w
        if not bad:
            return self.send(self.r2t(cid, 0, ln))
        if m == "r2t_split":
            if ln <= 512:
                return self.send(self.r2t(cid, 0, ln))
            w[4] = True
            return self.send(self.r2t(cid, 0, 512))
        if m == "c2h_for_write":
            return self.send(self.c2h(cid, 0, b"\xee" * 512, F_LAST | F_SUCCESS))
        if m == "r2t_beyond":
            return self.send(self.r2t(cid, 0, ln + 4096))
        if m == "r2t_zero":
            return self.send(self.r2t(cid, 0, 0))
        if m == "r2t_huge":
            return self.send(self.r2t(cid, 0, 0xffffffff))
        if m == "r2t_multi":
            h = ln // 2 if ln >= 1024 else ln
            return self.send(self.r2t(cid, 0, h) + self.r2t(cid, h, ln - h))
        if m == "r2t_stale":
            return self.send(self.r2t(cid, 0, ln) + self.r2t(cid, 0, ln))
        if m == "resp_during_h2c":
            # success right behind the R2T, before the data: the data still lands
            self.early[cid] = self.writes.pop(cid)
            return self.send(self.r2t(cid, 0, ln) + self.cqe(cid))
        if m == "resp_before_h2c":
            del self.writes[cid]
            return self.send(self.cqe(cid))
        return self.send(self.r2t(cid, 0, ln))


def serve(mode, port, trigger, lbads, nblocks, ready=None, mdts=5, digests=False):
    ctrl = Ctrl(mode, trigger, lbads, nblocks)
    ctrl.mdts = mdts
    ctrl.digests = digests
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    if ready is not None:
        ready.append(ls.getsockname()[1])
    while True:
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Conn(ctrl, s).run, daemon=True).start()


def sweep(args):
    modes = args.only.split(",") if args.only else list(MODES)
    bad = 0
    for m in modes:
        port = []
        lbads = 9 if m == "lbads9" else (16 if m == "lbads16" else 12)
        nblocks = (8 << 20) >> lbads
        th = threading.Thread(target=serve, args=(m, 0, args.trigger, lbads, nblocks, port,
                                                  args.mdts, args.digests), daemon=True)
        th.start()
        while not port:
            time.sleep(0.01)
        bs = args.bs or max(4096, 1 << lbads) * 2
        cmd = [args.tool, "-a", "127.0.0.1:%d" % port[0], "-n", "nqn.2026-01.io.ferry:fake",
               "--ios", str(args.ios), "--region", str(4 << 20), "--bs", str(bs),
               "-q", "2", "-d", "8"] + (["-g", "-G"] if args.digests else [])
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                               env=env)
            out = r.stdout + r.stderr
            rc = r.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(
                errors="replace")
            rc = "TIMEOUT"
        want = MODES.get(m, "any")
        why = []
        if rc == "TIMEOUT":
            why.append("hang")
        elif rc < 0:
            why.append("signal %d" % -rc)
        if "Sanitizer" in out or "runtime error:" in out:
            why.append("sanitizer")
        if "MISMATCH" in out:
            why.append("mismatch")
        if rc != "TIMEOUT" and rc >= 0:
            if want == "pass" and rc != 0:
                why.append("expected PASS, exit %d" % rc)
            if want == "fail" and rc == 0:
                why.append("expected failure, exit 0")
        verdict = "BUG: " + ", ".join(why) if why else "ok"
        bad += bool(why)
        st = [l for l in out.splitlines() if l.startswith("stats:") or "errors " in l]
        print("%-18s exit %-7s %s  %s" % (m, rc, verdict, " | ".join(st)[-150:]), flush=True)
        if why and args.verbose:
            print("\n".join("    " + l for l in out.splitlines()[-25:]))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("serve")
    a.add_argument("--mode", default="none", choices=sorted(MODES))
    a.add_argument("--port", type=int, default=4420)
    a.add_argument("--trigger", type=int, default=5, help="mutate the Nth I/O command")
    a.add_argument("--lbads", type=int, default=12)
    a.add_argument("--blocks", type=int, default=2048)
    a.add_argument("--mdts", type=int, default=5)
    a.add_argument("--digests", action="store_true", help="grant the digests asked for")
    b = sub.add_parser("sweep")
    b.add_argument("--tool", required=True)
    b.add_argument("--only", default="")
    b.add_argument("--ios", type=int, default=200)
    b.add_argument("--trigger", type=int, default=5)
    b.add_argument("--timeout", type=float, default=60)
    b.add_argument("--mdts", type=int, default=5, help="Identify MDTS (4 KiB pages, 2^n)")
    b.add_argument("--bs", type=int, default=0, help="the tool's I/O size (0: 2 blocks)")
    b.add_argument("--digests", action="store_true", help="-g -G, the fake grants both")
    b.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.mode, args.port, args.trigger, args.lbads, args.blocks, mdts=args.mdts,
              digests=args.digests)
        return 0
    return sweep(args)


if __name__ == "__main__":
    sys.exit(main())
