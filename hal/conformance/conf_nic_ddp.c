/*
 * Conformance, the NVMe/TCP receive offloads of the NIC class (ferry/hal/nic.h, "NVMe/TCP
 * receive offloads"): direct data placement, digest flags, teardown, limits, resync and
 * counters, through the HAL ops of every backend with FERRY_HAL_NIC_CAP_DDP.
 *
 * The set-up: one loopback connection on one device. The accepted end plays the controller:
 * a plain socket that writes hand-built NVMe/TCP streams (an ICResp, then C2HData PDUs with
 * or without data digest and CapsuleResps). The connecting end is the host end: it reads the
 * 128-byte ICResp, offloads the queue with rx_seq 128 and maps command ids to destinations in
 * ddp_domains[0] (the system domain), separate from the memory it receives into.
 *
 * How the checks judge (dq_rx): the check built the stream, so it knows for every stream
 * offset what the byte is (header, data of command cid at data offset d, digest) and whether
 * the command had a live mapping covering d. The receive buffer holds stream offset o at rb[o]
 * and starts as canary bytes, so does every destination (with gaps between its segments and a
 * tail after the mapping's end). For each recvv() return:
 *   - data of a mapped command with PLACED: the destination holds the byte and rb does not;
 *   - every other byte (no PLACED, or not mapped data): rb holds it;
 *   - while a resync request is unanswered (found=1 not yet given): no flags at all;
 *   - with data digests off: never CRC_OK.
 * At the end every destination byte is canary or, only where data for it was sent, that data;
 * nothing past a mapping's end changed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ferry/crc.h>
#include <ferry/nvme_tcp_spec.h>
#include "conf_nic.h"

#define F_PLACED FERRY_HAL_NIC_RX_F_PLACED
#define F_CRC FERRY_HAL_NIC_RX_F_CRC_OK

#define RB_CANARY 0xC5u /* receive buffer */
#define DS_CANARY 0x3Cu /* destinations */
#define DQ_CIDS 16u
#define DQ_MAXSEG 8u
#define DQ_TAIL 4096u /* canary bytes after a mapping's last segment */
#define DQ_QUIET_MS 200u
#define DQ_RS_MAX 64u
#define IC_LEN FERRY_NVME_TCP_HLEN_IC

/* One PDU of the stream the controller end sent. */
struct dpdu {
	uint64_t start, end;
	uint32_t dstart; /* first data byte's offset in the PDU (0: no data) */
	uint32_t datal, datao;
	uint32_t inmap; /* data bytes from datao on that a live mapping covers */
	uint16_t cid;
	uint8_t type, bad;
	uint8_t data_crc, dgst_crc; /* every data / digest byte came with CRC_OK */
	uint32_t data_seen, dgst_seen;
};

/* A command id's destination. */
struct dmap {
	int live; /* set up (the NIC may place), teardown not requested */
	uint8_t *region;
	size_t rlen;
	struct iovec seg[DQ_MAXSEG];
	uint32_t nseg, len;
	uint8_t *sent; /* data offsets 0..len+DQ_TAIL-1 for which data was sent */
	struct conf_cb td;
	uint64_t placed; /* bytes the NIC said it placed */
};

struct dq {
	struct cn t;
	struct ferry_hal_sock_group *g;
	struct cn_pair pr;
	uint64_t seed;
	int ddgst, offloaded;
	uint8_t *wire, *rb;
	size_t len, cap, sent, rx;
	struct dpdu *pdu;
	size_t npdu, pcap, cur;
	struct dmap m[DQ_CIDS];
	uint64_t rng;
	/* resync */
	uint64_t rs_seq[DQ_RS_MAX];
	uint32_t nrs, nans, found_right, found_wrong;
	int rs_wait;           /* a request is out and no found=1 given yet */
	uint64_t placed_after; /* PLACED bytes after the last found=1 */
	uint64_t flagged[4];   /* bytes received by flags value */
	int in_teardown;
	int cb_inside;
	uint64_t setup_refused; /* refusals dq_map_need() retried */
	int noflags;            /* the offload ended: no later byte comes with offload flags */
};

/* The byte command @p cid's data holds at offset @p d (the same whichever PDU carries it). */
static uint8_t data_byte(const struct dq *q, uint16_t cid, uint64_t d)
{
	uint64_t s = q->seed ^ ((uint64_t)cid << 40) ^ (d >> 3);
	return (uint8_t)(conf_rand(&s) >> ((d & 7) * 8));
}

static void resync_cb(void *ctx, uint64_t seq)
{
	struct dq *q = ctx;
	CONF_ASSERT(q->nrs < DQ_RS_MAX, "more than %u resync requests", DQ_RS_MAX);
	q->rs_seq[q->nrs++] = seq;
	q->rs_wait = 1;
}

/* ---- the stream ----------------------------------------------------------------------------- */

static void put(struct dq *q, const void *p, size_t n)
{
	if (q->len + n > q->cap) {
		size_t cap = (q->len + n) * 2 + 65536;
		uint8_t *w = realloc(q->wire, cap), *r = w ? realloc(q->rb, cap) : NULL;
		CONF_ASSERT(w && r, "out of memory for a %zu-byte stream", cap);
		memset(r + q->cap, RB_CANARY, cap - q->cap);
		q->wire = w;
		q->rb = r;
		q->cap = cap;
	}
	memcpy(q->wire + q->len, p, n);
	q->len += n;
}

static struct dpdu *pdu_new(struct dq *q, uint8_t type, uint16_t cid)
{
	if (q->npdu == q->pcap) {
		q->pcap = q->pcap * 2 + 256;
		q->pdu = realloc(q->pdu, q->pcap * sizeof(*q->pdu));
		CONF_ASSERT(q->pdu, "out of memory");
	}
	struct dpdu *p = &q->pdu[q->npdu++];
	*p = (struct dpdu){.start = q->len, .type = type, .cid = cid, .data_crc = 1, .dgst_crc = 1};
	return p;
}

static void icresp(struct dq *q)
{
	struct ferry_nvme_tcp_icresp r;
	memset(&r, 0, sizeof(r));
	r.ch = (struct ferry_nvme_tcp_ch){FERRY_NVME_TCP_ICRESP, 0, IC_LEN, 0, IC_LEN};
	r.dgst = q->ddgst ? FERRY_NVME_TCP_DGST_DDGST : 0;
	r.maxh2cdata = 131072;
	struct dpdu *p = pdu_new(q, FERRY_NVME_TCP_ICRESP, 0);
	put(q, &r, sizeof(r));
	p->end = q->len;
}

/* A C2HData PDU of command @p cid: @p datal bytes at @p datao (@p bad: digest bit flipped). */
static void c2h(struct dq *q, uint16_t cid, uint32_t datao, uint32_t datal, int last, int bad)
{
	uint32_t dg = q->ddgst ? FERRY_NVME_TCP_DIGEST_LEN : 0;
	struct ferry_nvme_tcp_data h;
	memset(&h, 0, sizeof(h));
	h.ch = (struct ferry_nvme_tcp_ch){FERRY_NVME_TCP_C2H_DATA,
					  (uint8_t)((q->ddgst ? FERRY_NVME_TCP_F_DDGST : 0) |
						    (last ? FERRY_NVME_TCP_F_LAST_PDU : 0)),
					  FERRY_NVME_TCP_HLEN_DATA, FERRY_NVME_TCP_HLEN_DATA,
					  FERRY_NVME_TCP_HLEN_DATA + datal + dg};
	h.cccid = cid;
	h.datao = datao;
	h.datal = datal;
	struct dpdu *p = pdu_new(q, FERRY_NVME_TCP_C2H_DATA, cid);
	p->dstart = FERRY_NVME_TCP_HLEN_DATA;
	p->datal = datal;
	p->datao = datao;
	p->bad = (uint8_t) !!bad;
	struct dmap *m = cid < DQ_CIDS ? &q->m[cid] : NULL;
	if (m && m->live && datao < m->len)
		p->inmap = m->len - datao < datal ? m->len - datao : datal;
	put(q, &h, sizeof(h));
	uint8_t buf[4096];
	uint32_t crc = 0;
	for (uint32_t off = 0; off < datal;) {
		uint32_t k = datal - off < sizeof(buf) ? datal - off : (uint32_t)sizeof(buf);
		for (uint32_t i = 0; i < k; i++)
			buf[i] = data_byte(q, cid, (uint64_t)datao + off + i);
		crc = ferry_crc32c(crc, buf, k);
		put(q, buf, k);
		off += k;
	}
	if (m && m->sent)
		for (uint64_t d = datao; d < (uint64_t)datao + datal && d < m->len + DQ_TAIL; d++)
			m->sent[d] = 1;
	if (dg) {
		crc ^= bad ? 0x00010000u : 0;
		uint8_t le[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
				 (uint8_t)(crc >> 24)};
		put(q, le, 4);
	}
	p->end = q->len;
}

static void resp(struct dq *q, uint16_t cid)
{
	struct ferry_nvme_tcp_resp r;
	memset(&r, 0, sizeof(r));
	r.ch = (struct ferry_nvme_tcp_ch){FERRY_NVME_TCP_CAPSULE_RESP, 0, FERRY_NVME_TCP_HLEN_RESP,
					  0, FERRY_NVME_TCP_HLEN_RESP};
	r.cqe.cid = cid;
	struct dpdu *p = pdu_new(q, FERRY_NVME_TCP_CAPSULE_RESP, cid);
	put(q, &r, sizeof(r));
	p->end = q->len;
}

/* The whole data of @p cid (@p total bytes) in PDUs of random sizes up to @p maxpdu. */
static void command(struct dq *q, uint16_t cid, uint32_t total, uint32_t maxpdu)
{
	for (uint32_t off = 0; off < total;) {
		uint32_t l = 1 + (uint32_t)(conf_rand(&q->rng) % maxpdu);
		if (l > total - off)
			l = total - off;
		c2h(q, cid, off, l, off + l == total, 0);
		off += l;
	}
	resp(q, cid);
}

/* ---- the receive side ---------------------------------------------------------------------- */

static uint8_t *dmap_at(struct dmap *m, uint64_t d)
{
	for (uint32_t i = 0; i < m->nseg; i++) {
		if (d < m->seg[i].iov_len)
			return (uint8_t *)m->seg[i].iov_base + d;
		d -= m->seg[i].iov_len;
	}
	return NULL;
}

/* Judge bytes [o, o + n) that recvv() returned with @p f (see the file's first comment). */
static void judge(struct dq *q, uint64_t o, uint64_t n, uint32_t f)
{
	CONF_ASSERT(!(f & ~(F_PLACED | F_CRC)), "recvv: unknown flag bits 0x%x", f);
	q->flagged[f & 3] += n;
	CONF_ASSERT(!q->rs_wait || f == 0,
		    "nic.h: after losing track the NIC reports no flags until resynced: flags "
		    "0x%x on stream bytes %llu..%llu with a resync request unanswered (seq %llu)",
		    f, (unsigned long long)o, (unsigned long long)(o + n - 1),
		    (unsigned long long)q->rs_seq[q->nrs ? q->nrs - 1 : 0]);
	/* After ddp_queue_del the socket is a plain one again: PLACED may only mean "read
	 * straight into the iovecs" (judged below: the bytes must be there), never CRC_OK. */
	CONF_ASSERT(!q->noflags || !(f & F_CRC),
		    "nic.h: after ddp_queue_del later bytes come without offload flags: CRC_OK on "
		    "stream bytes %llu..%llu",
		    (unsigned long long)o, (unsigned long long)(o + n - 1));
	CONF_ASSERT(q->ddgst || !(f & F_CRC),
		    "nic.h: CRC_OK on stream bytes %llu..%llu of a queue with data digests off",
		    (unsigned long long)o, (unsigned long long)(o + n - 1));
	uint64_t end = o + n;
	while (o < end) {
		while (q->cur < q->npdu && q->pdu[q->cur].end <= o)
			q->cur++;
		CONF_ASSERT(q->cur < q->npdu, "recvv returned stream byte %llu, past the %zu sent",
			    (unsigned long long)o, q->len);
		struct dpdu *p = &q->pdu[q->cur];
		uint64_t stop = end < p->end ? end : p->end;
		for (; o < stop; o++) {
			uint64_t in = o - p->start;
			int is_data = p->datal && in >= p->dstart && in < p->dstart + p->datal;
			int is_dgst = p->datal && in >= p->dstart + p->datal;
			uint8_t want = q->wire[o];
			if (is_data) {
				p->data_crc &= !!(f & F_CRC);
				p->data_seen++;
			} else if (is_dgst) {
				p->dgst_crc &= !!(f & F_CRC);
				p->dgst_seen++;
			}
			uint64_t d = is_data ? p->datao + (in - p->dstart) : 0;
			if (is_data && (f & F_PLACED) && d - p->datao < p->inmap) {
				struct dmap *m = &q->m[p->cid];
				uint8_t *at = dmap_at(m, d);
				CONF_ASSERT(at && *at == want,
					    "PLACED claimed for bytes the NIC did not place: stream "
					    "offset %llu (cid %u, data offset %llu): destination "
					    "holds 0x%02x, want 0x%02x",
					    (unsigned long long)o, p->cid, (unsigned long long)d,
					    at ? *at : 0, want);
				CONF_ASSERT(q->rb[o] == RB_CANARY || want == RB_CANARY,
					    "nic.h: PLACED bytes are not written into the caller's "
					    "iovecs: stream offset %llu (cid %u, data offset %llu) "
					    "changed the receive buffer to 0x%02x",
					    (unsigned long long)o, p->cid, (unsigned long long)d,
					    q->rb[o]);
				m->placed++;
				if (q->nans && !q->rs_wait)
					q->placed_after++;
			} else {
				const char *what = is_data && p->inmap
							   ? "data past the mapping's end"
						   : is_data ? "data of an unmapped cid"
						   : is_dgst ? "a data digest"
							     : "a header";
				CONF_ASSERT(q->rb[o] == want,
					    "%s: stream offset %llu (%s, cid %u, flags 0x%x): the "
					    "receive buffer holds 0x%02x, want 0x%02x",
					    (f & F_PLACED)
						    ? "PLACED claimed for bytes the NIC did not "
						      "place (nic.h: where it did not place, "
						      "the bytes are in the caller's iovecs)"
						    : "nic.h: bytes without PLACED are in the "
						      "caller's iovecs",
					    (unsigned long long)o, what, p->cid, f, q->rb[o], want);
			}
		}
	}
}

/* Answer what the NIC asked: found iff a PDU of the stream starts exactly there. */
static void answer(struct dq *q)
{
	while (q->nans < q->nrs) {
		uint64_t seq = q->rs_seq[q->nans++];
		size_t lo = 0, hi = q->npdu;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (q->pdu[mid].start < seq)
				lo = mid + 1;
			else
				hi = mid;
		}
		int found = lo < q->npdu && q->pdu[lo].start == seq;
		if (found) {
			q->found_right++;
			q->rs_wait = 0;
			q->placed_after = 0;
		} else {
			q->found_wrong++;
		}
		q->t.N->ddp_resync(q->pr.c, seq, found);
	}
}

static void dq_poll(struct dq *q, uint32_t timeout_us)
{
	(void)cn_poll(&q->t, q->g, NULL, 0, timeout_us);
	answer(q);
}

/* One receive into rb at the stream position, random iovecs, at most @p max bytes. */
static ssize_t rx_once(struct dq *q, size_t max)
{
	size_t room = q->len - q->rx;
	if (room > max)
		room = max;
	if (!room)
		return -EAGAIN;
	struct iovec v[4];
	uint32_t n = 1 + (uint32_t)(conf_rand(&q->rng) % 4);
	uint8_t *b = q->rb + q->rx;
	size_t left = room;
	for (uint32_t i = 0; i < n; i++) {
		size_t l = i == n - 1 ? left : conf_rand(&q->rng) % (left + 1);
		v[i] = (struct iovec){b, l};
		b += l;
		left -= l;
	}
	uint32_t f = 0;
	ssize_t r = q->t.N->recvv(q->pr.c, v, n, &f);
	answer(q);
	if (r == -EAGAIN)
		return r;
	CONF_ASSERT(r > 0 && (size_t)r <= room,
		    "recvv of %zu bytes at stream offset %zu returned %zd (%s; %s)", room, q->rx, r,
		    ferry_strerror((int)r), conf_last_error());
	judge(q, q->rx, (uint64_t)r, f);
	q->rx += (size_t)r;
	return r;
}

/* Send and receive until the host end received the whole stream (bounded). */
static void pump(struct dq *q)
{
	uint64_t end = conf_now_ns() + 4 * CN_WAIT_NS;
	while (q->rx < q->len) {
		if (q->sent < q->len) {
			size_t k = q->len - q->sent;
			struct iovec v = {q->wire + q->sent, k < 262144 ? k : 262144};
			ssize_t r = q->t.N->sendv(q->pr.a, &v, 1);
			CONF_ASSERT(r == -EAGAIN || r > 0,
				    "sendv (controller end) returned %zd (%s)", r,
				    ferry_strerror((int)r));
			if (r > 0)
				q->sent += (size_t)r;
		}
		ssize_t r = rx_once(q, 65536);
		if (r == -EAGAIN)
			dq_poll(q, 200);
		CONF_ASSERT(conf_now_ns() < end,
			    "20 s: the host end received %zu of %zu stream bytes (%zu sent)", q->rx,
			    q->len, q->sent);
	}
	dq_poll(q, 0);
}

/* ---- set-up -------------------------------------------------------------------------------- */

static void dq_down(struct dq *q);

/* Skip the check with the reason, after releasing what @p q holds (the reason is formatted
 * first: it may quote the backend's last error). */
__attribute__((noreturn, format(printf, 2, 3))) static void dq_skip(struct dq *q, const char *fmt,
								    ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	dq_down(q);
	CONF_SKIP("%s", why);
}

/* Device (with @p extra args), connection, ICResp received, queue offloaded with @p ddgst. */
static void dq_up(const struct conf_param *p, const char *extra, struct dq *q, int ddgst,
		  uint64_t salt)
{
	memset(q, 0, sizeof(*q));
	cn_open(p, extra, &q->t);
	cn_require_ddp(&q->t);
	CONF_ASSERT(q->t.info.ddp_ndomains >= 1 && q->t.info.ddp_domains[0],
		    "DDP without a placement domain");
	if (q->t.info.ddp_domains[0] != ferry_memdomain_system())
		dq_skip(q,
			"ddp_domains[0] is '%s', not the system domain (host memory would need "
			"a hook)",
			ferry_memdomain_get_name(q->t.info.ddp_domains[0]));
	q->seed = conf_seed(p, salt);
	q->rng = conf_seed(p, salt + 1);
	q->ddgst = ddgst;
	CONF_RC(q->t.N->group_create(q->t.dev, &q->g), 0, "group_create");
	cn_pair_open(&q->t, q->g, q, 0, &q->pr);
	icresp(q);
	pump(q);
	CONF_ASSERT(q->rx == IC_LEN, "the ICResp: %zu bytes received", q->rx);
	struct ferry_hal_ddp_queue_cfg cfg = {
		.size = sizeof(cfg),
		.ddgst = (uint8_t)ddgst,
		.queue_size = 64,
		.io_cpu = -1,
		.rx_seq = IC_LEN,
		.resync = resync_cb,
		.ctx = q,
	};
	int rc = q->t.N->ddp_queue_add(q->pr.c, &cfg);
	if (rc)
		dq_skip(q, "ddp_queue_add refused (%s; %s): nic.h lets the queue run in software",
			ferry_strerror(rc), conf_last_error());
	q->offloaded = 1;
}

/* Map @p cid to a fresh destination of @p len bytes in up to @p maxseg random segments. */
static int dq_map(struct dq *q, uint16_t cid, uint32_t len, uint32_t maxseg)
{
	struct dmap *m = &q->m[cid];
	free(m->region);
	free(m->sent);
	memset(m, 0, sizeof(*m));
	if (maxseg > DQ_MAXSEG)
		maxseg = DQ_MAXSEG;
	if (maxseg > q->t.info.ddp_max_sges)
		maxseg = q->t.info.ddp_max_sges;
	uint32_t n = 1 + (uint32_t)(conf_rand(&q->rng) % maxseg);
	if (n > len)
		n = len;
	m->rlen = len + (size_t)n * 64 + DQ_TAIL;
	m->region = malloc(m->rlen);
	m->sent = calloc(len + DQ_TAIL, 1);
	CONF_ASSERT(m->region && m->sent, "out of memory");
	memset(m->region, DS_CANARY, m->rlen);
	size_t pos = 0, left = len;
	for (uint32_t i = 0; i < n; i++) {
		size_t l = i == n - 1 ? left : 1 + conf_rand(&q->rng) % (left - (n - 1 - i));
		pos += conf_rand(&q->rng) % 64; /* a gap before each segment */
		m->seg[i] = (struct iovec){m->region + pos, l};
		pos += l;
		left -= l;
	}
	m->nseg = n;
	m->len = len;
	struct ferry_mem mem = {.domain = q->t.info.ddp_domains[0], .iov = m->seg, .iovcnt = n};
	int rc = q->t.N->ddp_setup(q->pr.c, cid, &mem);
	m->live = rc == 0;
	return rc;
}

/*
 * dq_map() that must succeed: nic.h lets a NIC refuse any setup (the I/O then runs in
 * software), so a refusal is retried a few times and, if it persists, skips the check.
 */
#define DQ_SETUP_TRIES 32
static void dq_map_need(struct dq *q, uint16_t cid, uint32_t len, uint32_t maxseg)
{
	int rc = 0;
	for (int i = 0; i < DQ_SETUP_TRIES; i++) {
		rc = dq_map(q, cid, len, maxseg);
		if (rc == 0)
			return;
		CONF_ASSERT(rc < 0 && rc != -EBUSY,
			    "ddp_setup of cid %u (%u bytes, free) returned %d (%s; %s)", cid, len,
			    rc, ferry_strerror(rc), conf_last_error());
		q->setup_refused++;
	}
	dq_skip(q,
		"ddp_setup of cid %u (%u bytes) refused %d times (%s; %s): nic.h lets the "
		"I/O run in software",
		cid, len, DQ_SETUP_TRIES, ferry_strerror(rc), conf_last_error());
}

/* Every destination byte: canary, or (only where data was sent) the data. */
static void dq_verify(struct dq *q, uint16_t cid)
{
	struct dmap *m = &q->m[cid];
	if (!m->region)
		return;
	uint8_t *seg_end = m->region;
	uint64_t d = 0;
	for (uint32_t i = 0; i < m->nseg; i++) {
		for (uint8_t *x = seg_end; x < (uint8_t *)m->seg[i].iov_base; x++)
			CONF_ASSERT(*x == DS_CANARY,
				    "cid %u: a byte between destination segments %u and %u changed "
				    "(0x%02x)",
				    cid, i ? i - 1 : 0, i, *x);
		uint8_t *b = m->seg[i].iov_base;
		for (size_t k = 0; k < m->seg[i].iov_len; k++, d++) {
			uint8_t want = data_byte(q, cid, d);
			CONF_ASSERT(b[k] == DS_CANARY || (m->sent[d] && b[k] == want),
				    "cid %u: destination data offset %llu holds 0x%02x: %s "
				    "(want 0x%02x or the canary 0x%02x)",
				    cid, (unsigned long long)d, b[k],
				    m->sent[d] ? "not the data sent for it"
					       : "no data was sent for it",
				    want, DS_CANARY);
		}
		seg_end = b + m->seg[i].iov_len;
	}
	for (uint8_t *x = seg_end; x < m->region + m->rlen; x++)
		CONF_ASSERT(*x == DS_CANARY,
			    "nic.h: a NIC never writes outside a mapping's destination: cid %u, "
			    "byte %td after the mapping's end is 0x%02x",
			    cid, x - seg_end, *x);
}

static void td_cb(void *ctx, int status)
{
	struct dmap *m = ctx;
	m->td.calls++;
	m->td.status = status;
}

/* A teardown callback that notes whether it ran inside ddp_teardown(). */
struct td_probe {
	struct dq *q;
	struct conf_cb cb;
};

static void td_probe_cb(void *ctx, int status)
{
	struct td_probe *p = ctx;
	p->cb.calls++;
	p->cb.status = status;
	if (p->q->in_teardown)
		p->q->cb_inside++;
}

/* Tear down @p cid and wait for its callback (exactly once, from group_poll()). */
static void dq_unmap(struct dq *q, uint16_t cid)
{
	struct dmap *m = &q->m[cid];
	if (!m->live)
		return;
	m->live = 0;
	CONF_RC(q->t.N->ddp_teardown(q->pr.c, cid, td_cb, m), 0, "ddp_teardown of a mapped cid");
	CONF_ASSERT(m->td.calls == 0,
		    "nic.h: the teardown callback never runs inside ddp_teardown(): cid %u's ran "
		    "%d time(s) inside the call",
		    cid, m->td.calls);
	uint64_t end = conf_now_ns() + CN_WAIT_NS;
	while (m->td.calls == 0) {
		CONF_ASSERT(conf_now_ns() < end,
			    "nic.h: cid %u: no teardown callback 5 s after "
			    "ddp_teardown (group_poll runs it)",
			    cid);
		dq_poll(q, 1000);
	}
	CONF_ASSERT(m->td.status == 0, "teardown callback of cid %u with status %d", cid,
		    m->td.status);
}

/* Poll a while: no teardown callback may come again. */
static void dq_quiet(struct dq *q)
{
	int calls[DQ_CIDS];
	for (uint32_t c = 0; c < DQ_CIDS; c++)
		calls[c] = q->m[c].td.calls;
	uint64_t end = conf_now_ns() + (uint64_t)DQ_QUIET_MS * 1000000ull;
	while (conf_now_ns() < end)
		dq_poll(q, 1000);
	for (uint32_t c = 0; c < DQ_CIDS; c++)
		CONF_ASSERT(q->m[c].td.calls == calls[c] && calls[c] <= 1,
			    "nic.h: a teardown callback runs exactly once: cid %u's ran %d times",
			    c, q->m[c].td.calls);
}

static void dq_down(struct dq *q)
{
	if (q->pr.c && q->offloaded)
		q->t.N->ddp_queue_del(q->pr.c);
	cn_pair_close(&q->t, &q->pr);
	q->t.N->group_destroy(q->g);
	for (uint32_t c = 0; c < DQ_CIDS; c++) {
		free(q->m[c].region);
		free(q->m[c].sent);
	}
	free(q->wire);
	free(q->rb);
	free(q->pdu);
	cn_close(&q->t);
}

static uint32_t io_cap(const struct dq *q, uint32_t want)
{
	return q->t.info.ddp_max_io < want ? q->t.info.ddp_max_io : want;
}

/* ---- checks -------------------------------------------------------------------------------- */

CONF_TEST(nic_ddp, placed_truthful)
{
	struct dq q;
	dq_up(param, NULL, &q, 1, 0xd1);
	/* cids 0..5 mapped with random lengths and segments, 6 unmapped, 7 mapped but sent a
	 * PDU running past its end. */
	uint32_t total[8];
	for (uint16_t c = 0; c < 6; c++) {
		total[c] = io_cap(&q, 4096 + (uint32_t)(conf_rand(&q.rng) % 200000u));
		dq_map_need(&q, c, total[c], DQ_MAXSEG);
	}
	total[6] = 50000;
	total[7] = io_cap(&q, 8192);
	dq_map_need(&q, 7, total[7], 2);
	/* Round-robin over the commands, PDUs of random sizes. */
	uint32_t off[8] = {0};
	for (int busy = 1; busy;) {
		busy = 0;
		for (uint16_t c = 0; c < 7; c++) {
			if (off[c] >= total[c])
				continue;
			uint32_t l = 1 + (uint32_t)(conf_rand(&q.rng) % 16384u);
			if (l > total[c] - off[c])
				l = total[c] - off[c];
			c2h(&q, c, off[c], l, off[c] + l == total[c], 0);
			off[c] += l;
			if (off[c] == total[c])
				resp(&q, c);
			busy = 1;
		}
	}
	/* cid 7: the first half fits, then one PDU from the middle 4 KiB past the end. */
	c2h(&q, 7, 0, total[7] / 2, 0, 0);
	c2h(&q, 7, total[7] / 2, total[7] - total[7] / 2 + 4096, 1, 0);
	resp(&q, 7);
	pump(&q);
	for (uint16_t c = 0; c < 8; c++)
		if (c != 6)
			dq_unmap(&q, c);
	dq_quiet(&q);
	uint64_t placed = 0;
	for (uint16_t c = 0; c < 8; c++) {
		dq_verify(&q, c);
		placed += q.m[c].placed;
	}
	CONF_INFO("%zu stream bytes: %llu placed, %llu copied, %llu placed+crc, %llu crc", q.len,
		  (unsigned long long)placed, (unsigned long long)q.flagged[0],
		  (unsigned long long)q.flagged[3], (unsigned long long)q.flagged[2]);
	dq_down(&q);
}

CONF_TEST(nic_ddp, crc_flags_truthful)
{
	for (int ddgst = 1; ddgst >= 0; ddgst--) {
		struct dq q;
		dq_up(param, NULL, &q, ddgst, 0xc7 + (uint64_t)ddgst);
		for (uint16_t c = 0; c < 4; c++)
			dq_map_need(&q, c, io_cap(&q, 65536), 4);
		/* Every other PDU of cids 1 and 3 with a corrupted digest. */
		for (uint16_t c = 0; c < 4; c++) {
			uint32_t total = io_cap(&q, 65536);
			int k = 0;
			for (uint32_t o = 0; o < total; k++) {
				uint32_t l = 1 + (uint32_t)(conf_rand(&q.rng) % 12000u);
				if (l > total - o)
					l = total - o;
				c2h(&q, c, o, l, o + l == total, ddgst && (c & 1) && (k & 1));
				o += l;
			}
			resp(&q, c);
		}
		pump(&q);
		uint32_t trusted = 0, good = 0, bad = 0;
		for (size_t i = 0; i < q.npdu; i++) {
			const struct dpdu *p = &q.pdu[i];
			if (p->type != FERRY_NVME_TCP_C2H_DATA)
				continue;
			int all = p->data_crc && p->dgst_crc && p->data_seen == p->datal &&
				  p->dgst_seen == (ddgst ? 4u : 0u);
			CONF_ASSERT(!(p->bad && all),
				    "nic.h: a digest mismatch is reported by the digest bytes "
				    "without CRC_OK: cid %u's PDU at stream offset %llu (data "
				    "offset %u, %u bytes) has a corrupted digest, yet all its data "
				    "and digest bytes came with CRC_OK",
				    p->cid, (unsigned long long)p->start, p->datao, p->datal);
			trusted += all;
			good += !p->bad;
			bad += p->bad;
		}
		for (uint16_t c = 0; c < 4; c++)
			dq_unmap(&q, c);
		dq_quiet(&q);
		for (uint16_t c = 0; c < 4; c++)
			dq_verify(&q, c);
		CONF_INFO("data digests %s: %u good and %u corrupted PDUs, %u trusted by CRC_OK",
			  ddgst ? "on" : "off", good, bad, trusted);
		dq_down(&q);
	}
}

CONF_TEST(nic_ddp, teardown_exactly_once)
{
	struct dq q;
	dq_up(param, NULL, &q, 0, 0x7d);
	const struct ferry_hal_nic_ops *N = q.t.N;
	uint32_t len = io_cap(&q, 16384);
	dq_map_need(&q, 1, len, 2);
	command(&q, 1, len, 4096);
	pump(&q);
	struct td_probe p0 = {.q = &q};
	CONF_RC(N->ddp_teardown(q.pr.c, 9, td_probe_cb, &p0), -ENOENT,
		"ddp_teardown of a cid never mapped");

	struct td_probe p = {.q = &q};
	q.m[1].live = 0;
	q.in_teardown = 1;
	int rc = N->ddp_teardown(q.pr.c, 1, td_probe_cb, &p);
	q.in_teardown = 0;
	CONF_RC(rc, 0, "ddp_teardown of cid 1");
	CONF_ASSERT(q.cb_inside == 0 && p.cb.calls == 0,
		    "nic.h: the teardown callback never runs inside ddp_teardown() (it ran %d "
		    "time(s) inside the call)",
		    p.cb.calls);
	struct iovec v = {q.m[1].region, len};
	struct ferry_mem mem = {.domain = q.t.info.ddp_domains[0], .iov = &v, .iovcnt = 1};
	CONF_RC(N->ddp_setup(q.pr.c, 1, &mem), -EBUSY,
		"ddp_setup of cid 1 before its teardown callback");
	uint64_t end = conf_now_ns() + CN_WAIT_NS;
	while (p.cb.calls == 0) {
		CONF_ASSERT(conf_now_ns() < end,
			    "nic.h: no teardown callback 5 s after ddp_teardown (a later "
			    "group_poll() runs it)");
		dq_poll(&q, 1000);
	}
	end = conf_now_ns() + (uint64_t)DQ_QUIET_MS * 1000000ull;
	while (conf_now_ns() < end)
		dq_poll(&q, 1000);
	CONF_ASSERT(p.cb.calls == 1 && p.cb.status == 0,
		    "nic.h: a teardown callback runs exactly once with status 0: %d call(s), "
		    "status %d",
		    p.cb.calls, p.cb.status);
	CONF_ASSERT(p0.cb.calls == 0,
		    "nic.h: a teardown callback runs iff ddp_teardown returned 0: the one refused "
		    "with -ENOENT ran %d time(s)",
		    p0.cb.calls);
	dq_map_need(&q, 1, len, 2);
	command(&q, 1, len, 8192);
	pump(&q);
	dq_unmap(&q, 1);

	/* ddp_queue_del with mappings live: the pending teardown completes there, once. */
	dq_map_need(&q, 2, len, 2);
	dq_map_need(&q, 3, len, 2);
	struct td_probe p2 = {.q = &q};
	q.m[2].live = 0;
	CONF_RC(N->ddp_teardown(q.pr.c, 2, td_probe_cb, &p2), 0, "ddp_teardown of cid 2");
	CONF_ASSERT(p2.cb.calls == 0, "teardown callback inside ddp_teardown");
	N->ddp_queue_del(q.pr.c);
	q.offloaded = 0;
	q.m[3].live = 0; /* released by queue_del: later bytes come without flags */
	CONF_ASSERT(p2.cb.calls == 1,
		    "nic.h: ddp_queue_del: pending teardowns complete (their callbacks run now): "
		    "cid 2's ran %d time(s)",
		    p2.cb.calls);
	q.noflags = 1;
	command(&q, 3, len, 4096);
	pump(&q);
	end = conf_now_ns() + (uint64_t)DQ_QUIET_MS * 1000000ull;
	while (conf_now_ns() < end)
		dq_poll(&q, 1000);
	CONF_ASSERT(p2.cb.calls == 1, "cid 2's teardown callback ran %d times", p2.cb.calls);
	for (uint16_t c = 1; c <= 3; c++)
		dq_verify(&q, c);
	dq_down(&q);

	/* close() with a teardown pending: the callback runs there, once. */
	dq_up(param, NULL, &q, 0, 0x7e);
	dq_map_need(&q, 4, len, 1);
	struct td_probe p3 = {.q = &q};
	q.m[4].live = 0;
	CONF_RC(q.t.N->ddp_teardown(q.pr.c, 4, td_probe_cb, &p3), 0, "ddp_teardown of cid 4");
	CONF_ASSERT(p3.cb.calls == 0, "teardown callback inside ddp_teardown");
	q.t.N->close(q.pr.c);
	q.pr.c = NULL;
	CONF_ASSERT(p3.cb.calls == 1,
		    "nic.h: close() completes pending teardowns: cid 4's callback ran %d time(s)",
		    p3.cb.calls);
	end = conf_now_ns() + (uint64_t)DQ_QUIET_MS * 1000000ull;
	while (conf_now_ns() < end)
		dq_poll(&q, 1000);
	CONF_ASSERT(p3.cb.calls == 1, "cid 4's teardown callback ran %d times", p3.cb.calls);
	dq_down(&q);
}

CONF_TEST(nic_ddp, setup_limits)
{
	struct dq q;
	dq_up(param, NULL, &q, 0, 0x51);
	const struct ferry_hal_nic_ops *N = q.t.N;
	uint32_t sges = q.t.info.ddp_max_sges, maxio = q.t.info.ddp_max_io;
	struct ferry_memdomain *dom = q.t.info.ddp_domains[0];

	/* cid 1: one segment more than ddp_max_sges (1 byte each) */
	if (sges < 65536) {
		uint32_t n = sges + 1;
		struct iovec *v = calloc(n, sizeof(*v));
		uint8_t *b = malloc(n);
		CONF_ASSERT(v && b, "out of memory");
		memset(b, DS_CANARY, n);
		for (uint32_t i = 0; i < n; i++)
			v[i] = (struct iovec){b + i, 1};
		struct ferry_mem m = {.domain = dom, .iov = v, .iovcnt = n};
		int rc = N->ddp_setup(q.pr.c, 1, &m);
		CONF_ASSERT(rc < 0, "ddp_setup with %u segments (ddp_max_sges %u) returned %d", n,
			    sges, rc);
		c2h(&q, 1, 0, n, 1, 0);
		resp(&q, 1);
		pump(&q);
		for (uint32_t i = 0; i < n; i++)
			CONF_ASSERT(b[i] == DS_CANARY,
				    "cid 1 refused (too many segments) but its destination byte %u "
				    "changed",
				    i);
		free(v);
		free(b);
	}
	/* cid 2: one byte more than ddp_max_io */
	if (maxio < (64u << 20)) {
		size_t n = (size_t)maxio + 1;
		uint8_t *b = malloc(n);
		CONF_ASSERT(b, "out of memory");
		memset(b, DS_CANARY, n);
		struct iovec v = {b, n};
		struct ferry_mem m = {.domain = dom, .iov = &v, .iovcnt = 1};
		int rc = N->ddp_setup(q.pr.c, 2, &m);
		CONF_ASSERT(rc < 0, "ddp_setup of %zu bytes (ddp_max_io %u) returned %d", n, maxio,
			    rc);
		command(&q, 2, 65536, 16384);
		pump(&q);
		for (size_t i = 0; i < n; i++)
			CONF_ASSERT(b[i] == DS_CANARY,
				    "cid 2 refused (more than ddp_max_io) but its destination byte "
				    "%zu changed",
				    i);
		free(b);
	}
	/* Empty destinations and a cid mapped twice. */
	struct iovec z = {q.rb, 0};
	struct ferry_mem m0 = {.domain = dom, .iov = &z, .iovcnt = 0};
	CONF_ASSERT(N->ddp_setup(q.pr.c, 3, &m0) < 0, "ddp_setup with 0 segments accepted");
	m0.iovcnt = 1;
	CONF_ASSERT(N->ddp_setup(q.pr.c, 3, &m0) < 0, "ddp_setup of 0 bytes accepted");
	dq_map_need(&q, 4, io_cap(&q, 8192), 2);
	struct iovec v4 = {q.m[4].region, 16};
	struct ferry_mem m4 = {.domain = dom, .iov = &v4, .iovcnt = 1};
	CONF_RC(N->ddp_setup(q.pr.c, 4, &m4), -EBUSY, "ddp_setup of a cid mapped already");
	command(&q, 4, io_cap(&q, 8192), 3000);
	pump(&q);
	dq_unmap(&q, 4);
	dq_verify(&q, 4);
	dq_down(&q);
}

CONF_TEST(nic_ddp, resync)
{
	struct dq q;
	dq_up(param, NULL, &q, 0, 0x4e);
	uint32_t len = io_cap(&q, 65536);
	for (uint16_t c = 0; c < 4; c++)
		dq_map_need(&q, c, len, 4);
	/* Rounds of the four commands' whole data until the NIC asked for a resync, was
	 * answered, and placed again after it (the data per offset is the same each round). */
	int rounds = 0;
	for (; rounds < 48; rounds++) {
		for (uint16_t c = 0; c < 4; c++)
			command(&q, c, len, 16384);
		pump(&q);
		if (q.found_right && !q.rs_wait && q.placed_after > 0)
			break;
	}
	if (q.nrs == 0)
		dq_skip(&q,
			"the NIC asked for no resync in %zu stream bytes (mock: --args "
			"resync_ppm=20000)",
			q.len);
	CONF_ASSERT(q.found_right > 0 && !q.rs_wait,
		    "%u resync request(s) in %zu bytes, none at a PDU start (answered found=0 "
		    "%u times)",
		    q.nrs, q.len, q.found_wrong);
	CONF_ASSERT(q.placed_after > 0,
		    "nic.h: after a resync answered found the NIC resumes tracking: no byte "
		    "PLACED in the %d round(s) since (%u requests, %u right, %u wrong)",
		    rounds, q.nrs, q.found_right, q.found_wrong);
	for (uint16_t c = 0; c < 4; c++)
		dq_unmap(&q, c);
	dq_quiet(&q);
	for (uint16_t c = 0; c < 4; c++)
		dq_verify(&q, c);
	CONF_INFO("%zu stream bytes in %d round(s): %u resync requests, %u found, %u not", q.len,
		  rounds + 1, q.nrs, q.found_right, q.found_wrong);
	dq_down(&q);
}

CONF_TEST(nic_ddp, stats)
{
	struct dq q;
	dq_up(param, NULL, &q, 0, 0x57);
	const struct ferry_hal_nic_ops *N = q.t.N;
	if (!N->ddp_stats) {
		dq_down(&q);
		CONF_SKIP("ddp_stats is NULL (optional)");
	}
	struct ferry_hal_ddp_stats a, b;
	CONF_RC(N->ddp_stats(q.t.dev, &a), 0, "ddp_stats");
	uint32_t len = io_cap(&q, 8192);
	for (uint16_t c = 0; c < 5; c++)
		dq_map_need(&q, c, len, 2);
	struct iovec v = {q.m[0].region, 16};
	struct ferry_mem m = {.domain = q.t.info.ddp_domains[0], .iov = &v, .iovcnt = 1};
	CONF_ASSERT(N->ddp_setup(q.pr.c, 0, &m) < 0, "ddp_setup of a mapped cid accepted");
	for (uint16_t c = 0; c < 5; c++)
		command(&q, c, len, 4096);
	pump(&q);
	for (uint16_t c = 0; c < 5; c++)
		dq_unmap(&q, c);
	CONF_RC(N->ddp_stats(q.t.dev, &b), 0, "ddp_stats");
	CONF_ASSERT(b.setup - a.setup == 5 && b.teardown - a.teardown == 5 &&
			    b.setup_fail - a.setup_fail == 1 + q.setup_refused,
		    "ddp_stats: 5 setups, %llu refused and 5 teardowns done, the counters moved "
		    "by setup %llu, setup_fail %llu, teardown %llu",
		    (unsigned long long)(1 + q.setup_refused),
		    (unsigned long long)(b.setup - a.setup),
		    (unsigned long long)(b.setup_fail - a.setup_fail),
		    (unsigned long long)(b.teardown - a.teardown));
	N->ddp_queue_del(q.pr.c);
	q.offloaded = 0;
	CONF_RC(N->ddp_stats(q.t.dev, &b), 0, "ddp_stats");
	CONF_ASSERT(b.queue_del - a.queue_del == 1 && b.queue_add == a.queue_add,
		    "ddp_stats: one ddp_queue_del, queue_del moved by %llu (queue_add by %llu)",
		    (unsigned long long)(b.queue_del - a.queue_del),
		    (unsigned long long)(b.queue_add - a.queue_add));
	CONF_ASSERT(b.offloaded_bytes - a.offloaded_bytes >= q.m[0].placed,
		    "ddp_stats: offloaded_bytes moved by %llu, %llu bytes of cid 0 alone came "
		    "PLACED",
		    (unsigned long long)(b.offloaded_bytes - a.offloaded_bytes),
		    (unsigned long long)q.m[0].placed);
	dq_down(&q);
}
