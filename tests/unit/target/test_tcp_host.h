/*
 * A raw NVMe/TCP host for the "tcp" target transport tests: plain POSIX sockets on 127.0.0.1,
 * PDUs built and parsed with the codec (ferry/module/nvme_tcp.h). The target runs in the
 * test's thread (single-threaded mode): every wait of the host polls the transport, bounded
 * by a deadline. Included by tests/unit/target/test_tcp_*.c.
 */
#ifndef TEST_TCP_HOST_H
#define TEST_TCP_HOST_H

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/crc.h>
#include <ferry/log.h>
#include <ferry/nvme.h>
#include <ferry/nvmf_spec.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include <ferry/module/nvme_tcp.h>

#define TH_NQN "nqn.2026-12.io.ferry:tcp-test"
#define TH_HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:ferry-test-host"
#define TH_BLOCKS 4096u /* 512-byte blocks: 2 MiB */
#define TH_WAIT_NS 5000000000ull

struct th_tgt {
	struct ferry_transport *t;
	struct ferry_nvme_subsystem *ss;
	struct ferry_bdev *bdev;
	int port;
	int threaded; /* poll groups polled by threads: the host does not poll the transport */
};
static struct th_tgt TT;

static uint64_t th_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void th_poll(void)
{
	if (TT.threaded) {
		struct timespec ts = {0, 20000};
		nanosleep(&ts, NULL);
	}
	ferry_transport_poll(TT.t, 0);
}

__attribute__((unused)) static void th_tgt_up(const char *args)
{
	memset(&TT, 0, sizeof(TT));
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "th_malloc",
					    .block_size = 512,
					    .num_blocks = TH_BLOCKS};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &TT.bdev), 0);
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = TH_NQN,
					       .serial = "FERRYTCP"};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &TT.ss), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = TT.bdev, .nsid = 1};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(TT.ss, &no, NULL), 0);
	struct ferry_transport_opts to = {.size = sizeof(to), .args = args ? args : "buffers=256"};
	int rc = ferry_transport_create("tcp", &to, &TT.t);
	cr_assert_eq(rc, 0, "create tcp: %d (%s)", rc, ferry_last_error());
	cr_assert_eq(ferry_transport_listen(TT.t, TT.ss, "127.0.0.1:0"), 0);
	char a[64];
	cr_assert_eq(ferry_tcp_transport_get_listen_addr(TT.t, 0, a, sizeof(a)), 0);
	const char *colon = strrchr(a, ':');
	cr_assert(colon);
	TT.port = atoi(colon + 1);
	cr_assert_gt(TT.port, 0);
}

__attribute__((unused)) static void th_tgt_down(void)
{
	ferry_transport_destroy(TT.t);
	cr_assert_eq(ferry_nvme_subsystem_destroy(TT.ss), 0, "a controller was left behind");
	ferry_bdev_destroy(TT.bdev);
}

struct th_host {
	int fd;
	struct ferry_nvme_tcp_params p;
	struct ferry_nvme_tcp_rx rx;
	uint8_t in[65536];
	size_t have, off;
	uint8_t hdr[FERRY_NVME_TCP_HLEN_MAX];
	uint8_t pdu_data[256]; /* TermReq data, other small payloads */
	uint32_t pdu_data_len;
	uint8_t *dest; /* C2HData destination */
	size_t dest_len;
	struct iovec dest_iov;
	uint16_t cid;
	uint16_t cntlid;
	uint32_t maxh2c;
	uint32_t c2h_pdus;
};

static void th_open(struct th_host *h)
{
	memset(h, 0, sizeof(*h));
	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(h->fd, 0);
	int one = 1;
	setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)TT.port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK);
	h->p.role = FERRY_NVME_TCP_ROLE_HOST;
	cr_assert_eq(ferry_nvme_tcp_rx_init(&h->rx, &h->p), 0);
	h->cid = 1;
}

static void th_close(struct th_host *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}

/* Sends all bytes, polling the target while the socket is full. 0, or -1 if it broke. */
static int th_send(struct th_host *h, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	uint64_t end = th_now() + TH_WAIT_NS;
	while (len) {
		ssize_t n = send(h->fd, b, len, MSG_NOSIGNAL);
		if (n > 0) {
			b += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		th_poll();
		if (th_now() > end)
			return -1;
	}
	return 0;
}

/*
 * Receives one PDU (polling the target meanwhile). C2HData payload goes to h->dest at DATAO.
 * Returns 1 (h->hdr holds the header), 0 on EOF, -1 on a timeout, -2 on a host-side
 * protocol error of the stream.
 */
static int th_recv(struct th_host *h)
{
	uint64_t end = th_now() + TH_WAIT_NS;
	for (;;) {
		while (h->off < h->have) {
			size_t used = 0;
			struct ferry_nvme_tcp_rx_event ev;
			cr_assert_eq(ferry_nvme_tcp_rx_feed(&h->rx, h->in + h->off,
							    h->have - h->off, &used, &ev),
				     0);
			h->off += used;
			if (ev.type == FERRY_NVME_TCP_RX_HEADER) {
				if (ev.data_len == 0)
					continue;
				if (ev.hdr->pdu_type == FERRY_NVME_TCP_C2H_DATA) {
					const struct ferry_nvme_tcp_data *d = (const void *)ev.hdr;
					cr_assert(h->dest, "C2HData without a read in progress");
					cr_assert_leq((size_t)d->datao + d->datal, h->dest_len,
						      "C2HData beyond the read: %u+%u > %zu",
						      d->datao, d->datal, h->dest_len);
					h->dest_iov.iov_base = h->dest + d->datao;
					h->dest_iov.iov_len = d->datal;
					cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&h->rx,
										&h->dest_iov, 1),
						     0);
				} else {
					cr_assert_leq(ev.data_len, sizeof(h->pdu_data));
					h->pdu_data_len = ev.data_len;
					h->dest_iov.iov_base = h->pdu_data;
					h->dest_iov.iov_len = ev.data_len;
					cr_assert_eq(ferry_nvme_tcp_rx_set_dest(&h->rx,
										&h->dest_iov, 1),
						     0);
				}
			} else if (ev.type == FERRY_NVME_TCP_RX_DONE) {
				memcpy(h->hdr, ev.hdr, ev.hdr->hlen);
				cr_assert_eq(ev.ddgst_error, 0,
					     "data digest error from the target");
				if (ev.hdr->pdu_type == FERRY_NVME_TCP_C2H_DATA)
					h->c2h_pdus++;
				return 1;
			} else if (ev.type == FERRY_NVME_TCP_RX_ERROR) {
				return -2;
			}
		}
		ssize_t n = recv(h->fd, h->in, sizeof(h->in), 0);
		if (n > 0) {
			h->have = (size_t)n;
			h->off = 0;
			continue;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return 0;
		th_poll();
		if (th_now() > end)
			return -1;
	}
}

static uint8_t th_type(const struct th_host *h)
{
	return ((const struct ferry_nvme_tcp_ch *)(const void *)h->hdr)->pdu_type;
}

/* Waits for the target to close the connection (after anything it still sends). 1: closed. */
__attribute__((unused)) static int th_wait_eof(struct th_host *h)
{
	uint64_t end = th_now() + TH_WAIT_NS;
	uint8_t b[4096];
	for (;;) {
		ssize_t n = recv(h->fd, b, sizeof(b), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return 1;
		th_poll();
		if (th_now() > end)
			return 0;
	}
}

static void th_ic(struct th_host *h, uint8_t hpda, uint8_t dgst)
{
	uint8_t b[128];
	ferry_nvme_tcp_build_icreq(b, hpda, dgst, 0);
	cr_assert_eq(th_send(h, b, sizeof(b)), 0);
	cr_assert_eq(th_recv(h), 1, "no ICResp");
	cr_assert_eq(th_type(h), FERRY_NVME_TCP_ICRESP);
	const struct ferry_nvme_tcp_icresp *r = (const void *)h->hdr;
	cr_assert_eq(r->pfv, 0);
	cr_assert_eq(r->cpda, 0);
	cr_assert_eq(r->dgst, dgst, "digests: asked 0x%x, got 0x%x", dgst, r->dgst);
	h->maxh2c = r->maxh2cdata;
	h->p.hdgst = !!(dgst & FERRY_NVME_TCP_DGST_HDGST);
	h->p.ddgst = !!(dgst & FERRY_NVME_TCP_DGST_DDGST);
	h->p.hpda = hpda;
	h->p.cpda = r->cpda;
	h->p.maxh2cdata = r->maxh2cdata;
	cr_assert_eq(ferry_nvme_tcp_rx_set_params(&h->rx, &h->p), 0);
}

/* Sends a CapsuleCmd with @p icd_len bytes of in-capsule data. */
static void th_send_cmd(struct th_host *h, const struct ferry_nvme_sqe *sqe, const void *icd,
			uint32_t icd_len)
{
	uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX];
	size_t hl = ferry_nvme_tcp_build_cmd(b, &h->p, sqe, icd_len);
	cr_assert_gt(hl, 0);
	cr_assert_eq(th_send(h, b, hl), 0);
	if (icd_len) {
		cr_assert_eq(th_send(h, icd, icd_len), 0);
		if (h->p.ddgst) {
			uint32_t crc = ferry_crc32c(0, icd, icd_len);
			cr_assert_eq(th_send(h, &crc, 4), 0);
		}
	}
}

/* Waits for the CapsuleResp of the last command: its 15-bit status, or -1 on no response. */
static int th_resp(struct th_host *h, struct ferry_nvme_cqe *out)
{
	int rc = th_recv(h);
	if (rc != 1 || th_type(h) != FERRY_NVME_TCP_CAPSULE_RESP)
		return -1;
	const struct ferry_nvme_tcp_resp *r = (const void *)h->hdr;
	if (out)
		*out = r->cqe;
	return r->cqe.status >> 1;
}

static void th_sqe_sgl(struct ferry_nvme_sqe *s, int icd, uint32_t len)
{
	s->flags = (uint8_t)(1u << 6); /* PSDT 01b: SGL */
	s->dptr.sgl.address = 0;
	s->dptr.sgl.length = len;
	s->dptr.sgl.id = icd ? FERRY_NVME_TCP_SGL_ICD : FERRY_NVME_TCP_SGL_TRANSPORT;
}

/* Connect: qid 0 (admin, cntlid 0xffff) or an I/O queue of h->cntlid. Status. */
static int th_connect_ex(struct th_host *h, uint16_t qid, uint16_t sqsize, uint32_t kato,
			 const char *subnqn, uint16_t cntlid, uint16_t recfmt,
			 struct ferry_nvme_cqe *cqe)
{
	struct ferry_nvmf_connect_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = FERRY_NVMF_FCTYPE_CONNECT;
	c.cid = h->cid++;
	c.recfmt = recfmt;
	c.qid = qid;
	c.sqsize = sqsize;
	c.kato = kato;
	struct ferry_nvmf_connect_data d = {0};
	memset(d.hostid, 0x5a, sizeof(d.hostid));
	d.cntlid = cntlid;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", subnqn);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", TH_HOSTNQN);
	struct ferry_nvme_sqe *s = (struct ferry_nvme_sqe *)(void *)&c;
	th_sqe_sgl(s, 1, sizeof(d));
	th_send_cmd(h, s, &d, sizeof(d));
	struct ferry_nvme_cqe r;
	int st = th_resp(h, &r);
	if (st == 0 && qid == 0)
		h->cntlid = (uint16_t)r.dw0;
	if (cqe)
		*cqe = r;
	return st;
}

static int th_connect(struct th_host *h, uint16_t qid, uint16_t sqsize, uint32_t kato)
{
	return th_connect_ex(h, qid, sqsize, kato, TH_NQN, qid ? h->cntlid : 0xffff, 0, NULL);
}

static int th_prop(struct th_host *h, int set, uint32_t off, uint32_t size, uint64_t *val)
{
	struct ferry_nvmf_prop_set_cmd c = {0};
	c.opcode = FERRY_NVMF_OPC_FABRICS;
	c.fctype = set ? FERRY_NVMF_FCTYPE_PROPERTY_SET : FERRY_NVMF_FCTYPE_PROPERTY_GET;
	c.cid = h->cid++;
	c.attrib = size == 8 ? 1 : 0;
	c.offset = off;
	if (set)
		c.value = *val;
	th_send_cmd(h, (struct ferry_nvme_sqe *)(void *)&c, NULL, 0);
	struct ferry_nvme_cqe r;
	int st = th_resp(h, &r);
	if (!set && st == 0)
		*val = (uint64_t)r.dw0 | ((uint64_t)r.dw1 << 32);
	return st;
}

/* Enables the controller: CC.EN = 1 (IOSQES 6, IOCQES 4), waits for CSTS.RDY. */
static void th_enable(struct th_host *h)
{
	uint64_t cap = 0;
	cr_assert_eq(th_prop(h, 0, FERRY_NVME_REG_CAP, 8, &cap), 0);
	cr_assert_gt(cap & 0xffff, 0, "CAP.MQES");
	uint64_t cc = FERRY_NVME_CC_EN | (6u << 16) | (4u << 20);
	cr_assert_eq(th_prop(h, 1, FERRY_NVME_REG_CC, 4, &cc), 0);
	uint64_t csts = 0;
	for (int i = 0; i < 1000 && !(csts & FERRY_NVME_CSTS_RDY); i++) {
		cr_assert_eq(th_prop(h, 0, FERRY_NVME_REG_CSTS, 4, &csts), 0);
		th_poll();
	}
	cr_assert(csts & FERRY_NVME_CSTS_RDY, "CSTS.RDY never set");
}

/* A command reading @p len bytes into @p buf (C2HData). Status (0 also for SUCCESS). */
static int th_read_cmd(struct th_host *h, struct ferry_nvme_sqe *s, void *buf, uint32_t len)
{
	th_sqe_sgl(s, 0, len);
	h->dest = buf;
	h->dest_len = len;
	th_send_cmd(h, s, NULL, 0);
	uint32_t got = 0;
	for (;;) {
		int rc = th_recv(h);
		if (rc != 1) {
			h->dest = NULL;
			return -1;
		}
		if (th_type(h) == FERRY_NVME_TCP_C2H_DATA) {
			const struct ferry_nvme_tcp_data *d = (const void *)h->hdr;
			cr_assert_eq(d->cccid, s->cid);
			cr_assert_eq(d->datao, got, "C2HData out of order");
			cr_assert_leq(d->datal, h->maxh2c ? h->maxh2c : d->datal);
			got += d->datal;
			if (d->ch.flags & FERRY_NVME_TCP_F_SUCCESS) {
				cr_assert(d->ch.flags & FERRY_NVME_TCP_F_LAST_PDU);
				cr_assert_eq(got, len);
				h->dest = NULL;
				return 0;
			}
			continue;
		}
		h->dest = NULL;
		if (th_type(h) != FERRY_NVME_TCP_CAPSULE_RESP)
			return -1;
		const struct ferry_nvme_tcp_resp *r = (const void *)h->hdr;
		return r->cqe.status >> 1;
	}
}

/* H2CData PDUs for [0, len) of command @p cid / @p ttag, split at @p chunk. */
static void th_send_h2c(struct th_host *h, uint16_t cid, uint16_t ttag, const uint8_t *buf,
			uint32_t off, uint32_t len, uint32_t chunk)
{
	uint32_t end = off + len;
	while (off < end) {
		uint32_t l = end - off < chunk ? end - off : chunk;
		uint8_t b[FERRY_NVME_TCP_TX_HDR_MAX];
		size_t hl = ferry_nvme_tcp_build_data(b, &h->p, FERRY_NVME_TCP_H2C_DATA, cid, ttag,
						      off, l,
						      off + l == end ? FERRY_NVME_TCP_F_LAST_PDU
								     : 0);
		cr_assert_gt(hl, 0);
		cr_assert_eq(th_send(h, b, hl), 0);
		cr_assert_eq(th_send(h, buf + off, l), 0);
		if (h->p.ddgst) {
			uint32_t crc = ferry_crc32c(0, buf + off, l);
			cr_assert_eq(th_send(h, &crc, 4), 0);
		}
		off += l;
	}
}

/* A command writing @p len bytes: in-capsule, or through R2T and H2CData. Status. */
static int th_write_cmd(struct th_host *h, struct ferry_nvme_sqe *s, const void *buf, uint32_t len,
			int icd)
{
	th_sqe_sgl(s, icd, len);
	if (icd) {
		th_send_cmd(h, s, buf, len);
		return th_resp(h, NULL);
	}
	th_send_cmd(h, s, NULL, 0);
	uint32_t done = 0;
	while (done < len) {
		int rc = th_recv(h);
		if (rc != 1)
			return -1;
		if (th_type(h) == FERRY_NVME_TCP_CAPSULE_RESP) {
			const struct ferry_nvme_tcp_resp *r = (const void *)h->hdr;
			return r->cqe.status >> 1;
		}
		cr_assert_eq(th_type(h), FERRY_NVME_TCP_R2T);
		const struct ferry_nvme_tcp_r2t *r2t = (const void *)h->hdr;
		cr_assert_eq(r2t->cccid, s->cid);
		cr_assert_eq(r2t->r2to, done);
		cr_assert_leq((uint64_t)r2t->r2to + r2t->r2tl, len);
		th_send_h2c(h, s->cid, r2t->ttag, buf, r2t->r2to, r2t->r2tl, h->maxh2c);
		done += r2t->r2tl;
	}
	return th_resp(h, NULL);
}

static int th_rw(struct th_host *h, int write, uint64_t lba, uint32_t nblocks, void *buf, int icd)
{
	struct ferry_nvme_sqe s = {0};
	s.opcode = write ? FERRY_NVME_CMD_WRITE : FERRY_NVME_CMD_READ;
	s.cid = h->cid++;
	s.nsid = 1;
	s.cdw10 = (uint32_t)lba;
	s.cdw11 = (uint32_t)(lba >> 32);
	s.cdw12 = nblocks - 1;
	uint32_t len = nblocks * 512u;
	return write ? th_write_cmd(h, &s, buf, len, icd) : th_read_cmd(h, &s, buf, len);
}

/* ICReq, admin Connect, enable, I/O queue @p qid Connect on @p io (may be @p h itself: then
 * only the admin queue). */
static void th_assoc(struct th_host *adm, struct th_host *io, uint8_t dgst)
{
	th_open(adm);
	th_ic(adm, 0, dgst);
	cr_assert_eq(th_connect(adm, 0, 31, 0), 0, "admin Connect");
	th_enable(adm);
	if (io && io != adm) {
		th_open(io);
		th_ic(io, 0, dgst);
		io->cntlid = adm->cntlid;
		cr_assert_eq(th_connect(io, 1, 31, 0), 0, "I/O Connect");
	}
}

static void th_fill(uint8_t *b, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

/* Write then read back @p nblocks at @p lba over @p h and compare. */
static void th_io_check(struct th_host *h, uint64_t lba, uint32_t nblocks, int icd, uint32_t seed)
{
	size_t len = (size_t)nblocks * 512u;
	uint8_t *w = malloc(len), *r = malloc(len);
	cr_assert(w && r);
	th_fill(w, len, seed);
	memset(r, 0xee, len);
	cr_assert_eq(th_rw(h, 1, lba, nblocks, w, icd), 0, "write %u blocks at %llu", nblocks,
		     (unsigned long long)lba);
	cr_assert_eq(th_rw(h, 0, lba, nblocks, r, 0), 0, "read %u blocks at %llu", nblocks,
		     (unsigned long long)lba);
	cr_assert_eq(memcmp(w, r, len), 0, "read data differs from what was written");
	free(w);
	free(r);
}

#endif /* TEST_TCP_HOST_H */
