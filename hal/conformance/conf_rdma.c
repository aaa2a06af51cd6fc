/*
 * Conformance, the RDMA part of the NIC class (ferry/hal/rdma.h): its contract executed
 * through the HAL ops of every backend that has one (ferry_hal_backend::nic->rdma), with
 * nothing backend-specific. Both ends of every connection are on one device of the backend
 * under test, in this process, each with its own CQ; every wait polls both CQs (a backend may
 * progress its QPs only while their CQ is polled) and is bounded.
 *
 * Checks: the registry's RDMA ABI checks; query limits; listen/connect/accept with private
 * data both ways and the QP addresses; reject with private data; SEND/RECV and RDMA WRITE /
 * READ byte-exact with several SGEs (bytes around them untouched); a zero-length SEND; every
 * signaled work request completes exactly once with its wr_id and opcode (RECV: byte_len),
 * an unsignaled one silently; malformed posts refused; a bad rkey (-EREMOTEIO on that wr_id,
 * the QP in error, the outstanding receives flushed -ECANCELED); a deregistered region
 * refused to the peer; no completion of a destroyed QP while another QP on the same CQ runs;
 * cq_wait() timing out with nothing pending.
 *
 * Environment: FERRY_CONF_RDMA_ADDR, the IPv4 address the device listens and connects on
 * (default 127.0.0.1; rdma_cm refuses loopback, so a verbs device needs a real interface's).
 */
#include <stdio.h>
#include <stdlib.h>
#include "conf.h"
#include <ferry/hal/nic.h>
#include <ferry/hal/rdma.h>

#define WAIT_NS 10000000000ull /* the bound of every wait */
#define QUIET_MS 300u          /* polling after the expected completions: nothing more */
#define WC_MAX 64u
#define MAX_SGE 4u

#define RACCESS                                                                                    \
	(FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE | FERRY_HAL_RDMA_ACCESS_REMOTE_READ |                   \
	 FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE)

/* One end: its CQ and every completion taken from it since the last reset. */
struct rside {
	struct ferry_hal_rdma_cq *cq;
	struct ferry_hal_rdma_wc wc[WC_MAX];
	uint32_t n;
};

struct rt {
	const struct ferry_hal_rdma_ops *R;
	struct ferry_device *dev;
	struct ferry_hal_rdma_info info;
	const char *host;
	struct ferry_hal_rdma_listener *l;
	char laddr[96];
	struct rside s, c; /* server (passive) and client (active) */
	uint32_t nsge;     /* SGEs per work request used by the checks: min(max_sge, 4) */
};

/* A registered buffer and the bytes it must hold (checked whole: nothing else may change). */
struct rbuf {
	uint8_t *p, *exp;
	size_t len;
	struct ferry_hal_rdma_mr *mr;
	struct ferry_hal_rdma_mr_keys k;
};

/* ---- setup ---------------------------------------------------------------------------------- */

static const struct ferry_hal_rdma_ops *rdma_ops(const struct conf_param *p)
{
	const struct ferry_hal_backend *b = conf_backend(p);
	if (!b->nic || !b->nic->rdma)
		CONF_SKIP("no RDMA part (ferry_hal_backend::nic%s is NULL)",
			  b->nic ? "->rdma" : "");
	return b->nic->rdma;
}

/* Opens a device of @p p's backend; skips when it has no RDMA part or no device here. */
static void rt_open(const struct conf_param *p, struct rt *t)
{
	memset(t, 0, sizeof(*t));
	t->R = rdma_ops(p);
	t->dev = conf_open_device(p, p->args, FERRY_DEVICE_CLASS_NIC, "an RDMA table");
	int rc = t->R->query(t->dev, &t->info);
	if (rc == -ENODEV)
		CONF_SKIP("the device has no RDMA: rdma query returned -ENODEV (%s)",
			  conf_last_error());
	CONF_RC(rc, 0, "rdma query");
	t->host = getenv("FERRY_CONF_RDMA_ADDR");
	if (!t->host || !*t->host)
		t->host = "127.0.0.1";
	t->nsge = t->info.max_sge < MAX_SGE ? t->info.max_sge : MAX_SGE;
	CONF_ASSERT(t->nsge >= 2, "rdma.h info: max_sge %u, the contract says >= 2",
		    t->info.max_sge);
}

static struct ferry_hal_rdma_qp_attr rt_attr(const struct rt *t, struct rside *s, void *ctx)
{
	uint32_t ird = t->info.max_qp_rd_atom, ord = t->info.max_qp_init_rd_atom;
	return (struct ferry_hal_rdma_qp_attr){.size = sizeof(struct ferry_hal_rdma_qp_attr),
					       .cq = s->cq,
					       .max_send_wr = 32,
					       .max_recv_wr = 32,
					       .max_send_sge = t->nsge,
					       .max_recv_sge = t->nsge,
					       .max_inline = 0,
					       .initiator_depth = (uint8_t)(ird < 4 ? ird : 4),
					       .responder_resources = (uint8_t)(ord < 4 ? ord : 4),
					       .ctx = ctx};
}

/* Both CQs and a listener on host:0. */
static void rt_listen(struct rt *t)
{
	CONF_RC(t->R->cq_create(t->dev, 256, &t->s.cq), 0, "cq_create (server, 256 entries)");
	CONF_RC(t->R->cq_create(t->dev, 256, &t->c.cq), 0, "cq_create (client, 256 entries)");
	char a[80];
	snprintf(a, sizeof(a), "%s:0", t->host);
	CONF_RC(t->R->listen(t->dev, a, 8, &t->l), 0, "listen on port 0 (FERRY_CONF_RDMA_ADDR)");
	CONF_RC(t->R->listener_addr(t->l, t->laddr, sizeof(t->laddr)), 0, "listener_addr");
	size_t hl = strlen(t->host), ll = strlen(t->laddr);
	CONF_ASSERT(ll > hl + 1 && strncmp(t->laddr, t->host, hl) == 0 && t->laddr[hl] == ':',
		    "listener_addr: '%s' is not '%s:<port>'", t->laddr, t->host);
	CONF_ASSERT(strcmp(t->laddr + hl, ":0") != 0,
		    "listen: port 0 must pick a port (listener_addr says '%s')", t->laddr);
}

static void rt_close(struct rt *t)
{
	t->R->listener_close(t->l);
	t->R->cq_destroy(t->c.cq);
	t->R->cq_destroy(t->s.cq);
	ferry_device_close(t->dev);
}

/* ---- progress and completions --------------------------------------------------------------- */

static void side_poll(struct rt *t, struct rside *s, const char *who)
{
	struct ferry_hal_rdma_wc wc[8];
	int n = t->R->cq_poll(s->cq, wc, 8);
	CONF_ASSERT(n >= 0 && n <= 8, "cq_poll (%s) returned %d (%s; %s)", who, n,
		    ferry_strerror(n), conf_last_error());
	for (int i = 0; i < n; i++) {
		CONF_ASSERT(s->n < WC_MAX,
			    "rdma.h: each work request completes exactly once: %s's CQ returned "
			    "more than %u completions (wr_id 0x%llx status %d)",
			    who, WC_MAX, (unsigned long long)wc[i].wr_id, wc[i].status);
		s->wc[s->n++] = wc[i];
	}
}

static void pump(struct rt *t)
{
	uint32_t before = t->s.n + t->c.n;
	side_poll(t, &t->s, "server");
	side_poll(t, &t->c, "client");
	if (t->s.n + t->c.n == before)
		conf_sleep_us(20);
}

static void reset(struct rt *t)
{
	t->s.n = t->c.n = 0;
}

/* Pump until @p s holds @p want completions (WAIT_NS at most). */
static void wait_wc(struct rt *t, struct rside *s, uint32_t want, const char *what)
{
	uint64_t end = conf_now_ns() + WAIT_NS;
	while (s->n < want) {
		CONF_ASSERT(conf_now_ns() < end,
			    "rdma.h: each posted work request completes: %s: %u of %u completions "
			    "after 10 s",
			    what, s->n, want);
		pump(t);
	}
}

/* Pump QUIET_MS more: nothing beyond the completions taken so far may come. */
static void quiet(struct rt *t, const char *what)
{
	uint32_t sn = t->s.n, cn = t->c.n;
	uint64_t end = conf_now_ns() + (uint64_t)QUIET_MS * 1000000ull;
	while (conf_now_ns() < end)
		pump(t);
	const struct ferry_hal_rdma_wc *x = t->s.n > sn ? &t->s.wc[sn] : &t->c.wc[cn];
	CONF_ASSERT(t->s.n == sn && t->c.n == cn,
		    "rdma.h: each work request completes exactly once (an unsignaled success "
		    "silently): %s: %u more server and %u more client completions (the first: "
		    "wr_id 0x%llx status %d opcode %u)",
		    what, t->s.n - sn, t->c.n - cn, (unsigned long long)x->wr_id, x->status,
		    x->opcode);
}

static const char *op_name(uint32_t op)
{
	static const char *const n[] = {"SEND", "WRITE", "READ", "RECV"};
	return op < 4 ? n[op] : "?";
}

/*
 * The one completion of @p wr_id on @p s: status @p status, opcode @p op (when successful),
 * qp_ctx @p ctx, and (RECV) byte_len @p len.
 */
static void expect_wc(const struct rside *s, uint64_t wr_id, uint32_t op, int status, void *ctx,
		      uint32_t len)
{
	const struct ferry_hal_rdma_wc *w = NULL;
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->n; i++)
		if (s->wc[i].wr_id == wr_id) {
			w = &s->wc[i];
			k++;
		}
	CONF_ASSERT(k == 1,
		    "rdma.h: each work request completes exactly once, with its wr_id: %s wr_id "
		    "0x%llx completed %u times",
		    op_name(op), (unsigned long long)wr_id, k);
	CONF_ASSERT(w->status == status,
		    "rdma.h: completion status: %s wr_id 0x%llx has status %d (%s), want %d (%s) "
		    "(vendor_err %u; last error: %s)",
		    op_name(op), (unsigned long long)wr_id, w->status, ferry_strerror(w->status),
		    status, ferry_strerror(status), w->vendor_err, conf_last_error());
	CONF_ASSERT(w->qp_ctx == ctx,
		    "rdma.h wc.qp_ctx: wr_id 0x%llx came with qp_ctx %p, its QP's ctx is %p",
		    (unsigned long long)wr_id, w->qp_ctx, ctx);
	if (status != 0)
		return;
	CONF_ASSERT(w->opcode == op, "rdma.h wc.opcode: wr_id 0x%llx has opcode %u (%s), want %s",
		    (unsigned long long)wr_id, w->opcode, op_name(w->opcode), op_name(op));
	if (op == FERRY_HAL_RDMA_OP_RECV)
		CONF_ASSERT(w->byte_len == len,
			    "rdma.h wc.byte_len: RECV wr_id 0x%llx received %u bytes, %u were sent",
			    (unsigned long long)wr_id, w->byte_len, len);
}

/* ---- connections ---------------------------------------------------------------------------- */

static struct ferry_hal_rdma_req *take_req(struct rt *t, const void **pd, uint32_t *pl)
{
	struct ferry_hal_rdma_req *req = NULL;
	uint64_t end = conf_now_ns() + WAIT_NS;
	for (;;) {
		int rc = t->R->get_request(t->l, &req, pd, pl);
		if (rc == 0) {
			CONF_ASSERT(req != NULL, "get_request returned 0 without a request");
			return req;
		}
		CONF_ASSERT(rc == -EAGAIN,
			    "rdma.h get_request: 0 or -EAGAIN (none pending), got %d (%s; %s)", rc,
			    ferry_strerror(rc), conf_last_error());
		CONF_ASSERT(conf_now_ns() < end,
			    "rdma.h connect/get_request: no connection request at %s after 10 s",
			    t->laddr);
		pump(t);
	}
}

/* qp_state() of @p qp once it left @p from (WAIT_NS at most). */
static int state_after(struct rt *t, struct ferry_hal_rdma_qp *qp, int from, const void **pd,
		       uint32_t *pl, const char *what)
{
	uint64_t end = conf_now_ns() + WAIT_NS;
	for (;;) {
		int st = t->R->qp_state(qp, pd, pl);
		if (st != from && st != -EINPROGRESS)
			return st;
		CONF_ASSERT(conf_now_ns() < end, "rdma.h qp_state: %s: still %d (%s) after 10 s",
			    what, st, ferry_strerror(st));
		pump(t);
	}
}

/* Connect a client QP to the listener and accept it (no private data); both usable. */
static void rt_connect(struct rt *t, struct ferry_hal_rdma_qp **cqp, void *cctx,
		       struct ferry_hal_rdma_qp **sqp, void *sctx)
{
	struct ferry_hal_rdma_qp_attr ca = rt_attr(t, &t->c, cctx), sa = rt_attr(t, &t->s, sctx);
	CONF_RC(t->R->connect(t->dev, t->laddr, &ca, NULL, 0, 5000, cqp), 0, "connect");
	struct ferry_hal_rdma_req *req = take_req(t, NULL, NULL);
	CONF_RC(t->R->accept(req, &sa, NULL, 0, sqp), 0, "accept");
	int st = state_after(t, *cqp, -EINPROGRESS, NULL, NULL, "the client after accept");
	CONF_RC(st, 0, "rdma.h qp_state of an accepted connection (client side)");
}

/* ---- buffers -------------------------------------------------------------------------------- */

static void rbuf_init(struct rt *t, struct rbuf *b, size_t len, uint32_t access, uint64_t seed)
{
	b->p = malloc(len);
	b->exp = malloc(len);
	CONF_ASSERT(b->p && b->exp, "out of memory");
	b->len = len;
	conf_pattern(b->p, len, seed);
	memcpy(b->exp, b->p, len);
	CONF_RC(t->R->mr_reg(t->dev, b->p, len, access, &b->mr), 0, "mr_reg");
	CONF_ASSERT(b->mr != NULL, "mr_reg returned 0 without a region");
	t->R->mr_keys(b->mr, &b->k);
	CONF_ASSERT(b->k.len == len, "rdma.h mr_keys: len %llu, %zu registered",
		    (unsigned long long)b->k.len, len);
}

static void rbuf_free(struct rt *t, struct rbuf *b)
{
	t->R->mr_dereg(b->mr);
	free(b->p);
	free(b->exp);
}

/* SGE of [@p off, @p off + @p len) of @p b. */
static struct ferry_hal_rdma_sge sge_of(const struct rbuf *b, size_t off, uint32_t len)
{
	return (struct ferry_hal_rdma_sge){.addr = b->k.addr + off, .len = len, .lkey = b->k.lkey};
}

/* Every byte of @p b is what it must be (the data placed, everything around it untouched). */
static void rbuf_check(const struct rbuf *b, const char *what)
{
	for (size_t i = 0; i < b->len; i++) {
		if (b->p[i] == b->exp[i])
			continue;
		size_t j = i;
		while (j < b->len && b->p[j] != b->exp[j])
			j++;
		CONF_ASSERT(0,
			    "%s: byte %zu of a %zu-byte buffer is 0x%02x, want 0x%02x (%zu wrong "
			    "bytes from there)",
			    what, i, b->len, b->p[i], b->exp[i], j - i);
	}
}

/*
 * Cut @p total bytes into @p n SGEs of @p b starting at @p off, with a gap of @p gap bytes
 * between them and lengths unequal (the first is the shortest). Returns the end offset.
 */
static size_t layout(const struct rbuf *b, size_t off, uint32_t total, uint32_t n, size_t gap,
		     struct ferry_hal_rdma_sge *sge)
{
	uint32_t left = total;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t l = i == n - 1 ? left : total / (2 * n) + i * (total / (n * n + 1));
		if (l > left - (n - 1 - i))
			l = left - (n - 1 - i);
		if (l == 0)
			l = 1;
		sge[i] = sge_of(b, off, l);
		off += l + gap;
		left -= l;
	}
	CONF_ASSERT(off <= b->len, "test layout past its buffer");
	return off;
}

/* Gather @p n SGEs of @p from (as registered) into @p out; the byte count. */
static uint32_t gather(const struct rbuf *from, const struct ferry_hal_rdma_sge *sge, uint32_t n,
		       uint8_t *out)
{
	uint32_t pos = 0;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(out + pos, from->p + (sge[i].addr - from->k.addr), sge[i].len);
		pos += sge[i].len;
	}
	return pos;
}

/* Scatter @p len bytes of @p data into the expected image of @p to along @p sge. */
static void scatter_exp(struct rbuf *to, const struct ferry_hal_rdma_sge *sge, uint32_t n,
			const uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < n && len; i++) {
		uint32_t l = sge[i].len < len ? sge[i].len : len;
		memcpy(to->exp + (sge[i].addr - to->k.addr), data, l);
		data += l;
		len -= l;
	}
}

static int post1(struct rt *t, struct ferry_hal_rdma_qp *qp, uint64_t wr_id, uint32_t op,
		 uint32_t flags, const struct ferry_hal_rdma_sge *sge, uint32_t nsge,
		 uint64_t raddr, uint32_t rkey)
{
	struct ferry_hal_rdma_wr wr = {.wr_id = wr_id,
				       .opcode = op,
				       .flags = flags,
				       .sge = sge,
				       .nsge = nsge,
				       .rkey = rkey,
				       .remote_addr = raddr};
	const struct ferry_hal_rdma_wr *bad = NULL;
	return t->R->post_send(qp, &wr, &bad);
}

/* ---- the registry --------------------------------------------------------------------------- */

CONF_TEST(rdma, abi_and_required_members_checked)
{
	const struct ferry_hal_rdma_ops *orig = rdma_ops(param);
	const struct ferry_hal_backend *b = conf_backend(param);
	CONF_ASSERT(orig->abi_version == FERRY_HAL_RDMA_ABI_VERSION, "rdma abi_version %u",
		    orig->abi_version);
	char name[FERRY_HAL_NAME_MAX];
	snprintf(name, sizeof(name), "conf-rdma-%u", param->index);
	struct ferry_hal_rdma_ops r = *orig;
	struct ferry_hal_nic_ops nic = *b->nic;
	nic.rdma = &r;
	struct ferry_hal_backend copy = *b;
	copy.name = name;
	copy.nic = &nic;

	r.abi_version = FERRY_HAL_RDMA_ABI_VERSION + 1;
	int rc = ferry_hal_register(&copy);
	CONF_ASSERT(rc == -EPROTO, "register a copy with an RDMA table of abi_version + 1: %d (%s)",
		    rc, ferry_strerror(rc));
	CONF_ASSERT(ferry_hal_find(name) == NULL, "a refused copy is registered");
	r.abi_version = FERRY_HAL_RDMA_ABI_VERSION;
	r.post_send = NULL;
	rc = ferry_hal_register(&copy);
	CONF_ASSERT(rc == -EINVAL, "register a copy whose RDMA table has no post_send: %d (%s)", rc,
		    ferry_strerror(rc));
	CONF_ASSERT(ferry_hal_find(name) == NULL, "a refused copy is registered");
	r.post_send = orig->post_send;
	CONF_RC(ferry_hal_register(&copy), 0, "register an unchanged copy under a new name");
	CONF_RC(ferry_hal_unregister(&copy), 0, "unregister the copy");
}

/* ---- query ---------------------------------------------------------------------------------- */

CONF_TEST(rdma, query_limits)
{
	struct rt t;
	rt_open(param, &t);
	const struct ferry_hal_rdma_info *i = &t.info;
	CONF_ASSERT(memchr(i->name, 0, sizeof(i->name)) && i->name[0],
		    "rdma.h info.name: empty or not NUL-terminated");
	CONF_ASSERT(i->max_qp_wr >= 64, "rdma.h info: max_qp_wr %u, the contract says >= 64",
		    i->max_qp_wr);
	CONF_ASSERT(i->max_cqe >= 256, "rdma.h info: max_cqe %u, the contract says >= 256",
		    i->max_cqe);
	CONF_ASSERT(i->max_qp_rd_atom >= 1 && i->max_qp_init_rd_atom >= 1,
		    "rdma.h info: max_qp_rd_atom %u / max_qp_init_rd_atom %u, the contract says "
		    ">= 1",
		    i->max_qp_rd_atom, i->max_qp_init_rd_atom);
	CONF_ASSERT(i->max_mr_size >= 65536, "rdma.h info: max_mr_size %llu (< 64 KiB)",
		    (unsigned long long)i->max_mr_size);
	CONF_ASSERT(i->ndomains <= FERRY_HAL_RDMA_DOMAINS_MAX, "rdma.h info: ndomains %u > %d",
		    i->ndomains, FERRY_HAL_RDMA_DOMAINS_MAX);
	for (uint32_t k = 0; k < i->ndomains; k++)
		CONF_ASSERT(i->domains[k] != NULL, "rdma.h info: domains[%u] of %u is NULL", k,
			    i->ndomains);
	CONF_ASSERT(i->ndomains == 0 || t.R->mr_reg_mem,
		    "rdma.h info: %u domains declared without mr_reg_mem", i->ndomains);
	struct ferry_hal_nic_info ni;
	memset(&ni, 0, sizeof(ni));
	CONF_RC(conf_backend(param)->nic->query(t.dev, &ni), 0, "NIC query");
	CONF_ASSERT(ni.caps & FERRY_HAL_NIC_CAP_RDMA,
		    "nic.h: a device whose rdma query succeeds must report FERRY_HAL_NIC_CAP_RDMA "
		    "(caps 0x%x)",
		    ni.caps);
	CONF_INFO("%s: max_sge %u max_inline %u max_qp_wr %u max_cqe %u rd_atom %u/%u "
		  "max_mr_size %llu",
		  i->name, i->max_sge, i->max_inline, i->max_qp_wr, i->max_cqe, i->max_qp_rd_atom,
		  i->max_qp_init_rd_atom, (unsigned long long)i->max_mr_size);
	ferry_device_close(t.dev);
}

/* ---- connection manager --------------------------------------------------------------------- */

CONF_TEST(rdma, connect_accept_private_data_both_ways)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	struct ferry_hal_rdma_req *req = NULL;
	CONF_RC(t.R->get_request(t.l, &req, NULL, NULL), -EAGAIN,
		"rdma.h get_request with nothing pending");
	char small[4];
	CONF_RC(t.R->listener_addr(t.l, small, sizeof(small)), -ENOBUFS,
		"rdma.h listener_addr into 4 bytes");

	uint8_t cpd[40], spd[FERRY_HAL_RDMA_PDATA_MAX];
	conf_pattern(cpd, sizeof(cpd), 0xC11);
	conf_pattern(spd, sizeof(spd), 0x5E7);
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp = NULL, *sqp = NULL;
	struct ferry_hal_rdma_qp_attr ca = rt_attr(&t, &t.c, &cctx), sa = rt_attr(&t, &t.s, &sctx);
	CONF_RC(t.R->connect(t.dev, t.laddr, &ca, cpd, sizeof(cpd), 5000, &cqp), 0,
		"connect with 40 bytes of private data");
	const void *pd = NULL;
	uint32_t pl = 0;
	req = take_req(&t, &pd, &pl);
	CONF_ASSERT(pl >= sizeof(cpd) && pd && memcmp(pd, cpd, sizeof(cpd)) == 0,
		    "rdma.h get_request: the connect's private data (40 bytes) must arrive "
		    "(a CM may pad it: prefix compared): got %u bytes%s",
		    pl, pl >= sizeof(cpd) && pd ? ", different" : "");
	/* The QP of an accepted request takes receives at once. */
	struct rbuf rb, sb;
	rbuf_init(&t, &rb, 4096, RACCESS, 21);
	rbuf_init(&t, &sb, 4096, RACCESS, 22);
	CONF_RC(t.R->accept(req, &sa, spd, sizeof(spd), &sqp), 0,
		"accept with FERRY_HAL_RDMA_PDATA_MAX bytes of private data");
	struct ferry_hal_rdma_sge rs = sge_of(&rb, 0, 256);
	CONF_RC(t.R->post_recv(sqp, 0xA1, &rs, 1), 0,
		"rdma.h accept: the QP is usable for post_recv() at once");
	pd = NULL;
	pl = 0;
	int st = state_after(&t, cqp, -EINPROGRESS, &pd, &pl, "the client after accept");
	CONF_RC(st, 0, "rdma.h qp_state of an accepted connection (client)");
	CONF_ASSERT(pl >= sizeof(spd) && pd && memcmp(pd, spd, sizeof(spd)) == 0,
		    "rdma.h qp_state: the accept's private data (%zu bytes) must arrive (prefix "
		    "compared): got %u bytes%s",
		    sizeof(spd), pl, pl >= sizeof(spd) && pd ? ", different" : "");

	/* The passive side is established at the latest once one of its receives completed. */
	struct ferry_hal_rdma_sge ss = sge_of(&sb, 100, 77);
	CONF_RC(post1(&t, cqp, 0xB1, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED, &ss, 1,
		      0, 0),
		0, "post_send SEND on an established QP");
	wait_wc(&t, &t.s, 1, "the server's receive");
	wait_wc(&t, &t.c, 1, "the client's SEND");
	expect_wc(&t.s, 0xA1, FERRY_HAL_RDMA_OP_RECV, 0, &sctx, 77);
	expect_wc(&t.c, 0xB1, FERRY_HAL_RDMA_OP_SEND, 0, &cctx, 0);
	memcpy(rb.exp, sb.p + 100, 77);
	rbuf_check(&rb, "SEND of 77 bytes into a 256-byte receive");
	CONF_RC(t.R->qp_state(sqp, NULL, NULL), 0,
		"rdma.h accept: qp_state() is 0 once a receive of the QP completed");

	/* Addresses: the client's peer is the listener; the server's peer is the client. */
	char cl[96], cp[96], sp[96], sl[96];
	CONF_RC(t.R->qp_addr(cqp, 0, cl, sizeof(cl)), 0, "qp_addr (client, local)");
	CONF_RC(t.R->qp_addr(cqp, 1, cp, sizeof(cp)), 0, "qp_addr (client, peer)");
	CONF_RC(t.R->qp_addr(sqp, 0, sl, sizeof(sl)), 0, "qp_addr (server, local)");
	CONF_RC(t.R->qp_addr(sqp, 1, sp, sizeof(sp)), 0, "qp_addr (server, peer)");
	CONF_ASSERT(strcmp(cp, t.laddr) == 0,
		    "rdma.h qp_addr: the client's peer is '%s', it connected to '%s'", cp, t.laddr);
	CONF_ASSERT(strcmp(sp, cl) == 0,
		    "rdma.h qp_addr: the server's peer is '%s', the client's own address is '%s'",
		    sp, cl);
	CONF_ASSERT(strcmp(sl, t.laddr) == 0,
		    "rdma.h qp_addr: the server's local address is '%s', it listens on '%s'", sl,
		    t.laddr);
	CONF_RC(t.R->qp_addr(cqp, 1, small, sizeof(small)), -ENOBUFS,
		"rdma.h qp_addr into 4 bytes");
	quiet(&t, "after one SEND");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rbuf_free(&t, &rb);
	rbuf_free(&t, &sb);
	rt_close(&t);
}

CONF_TEST(rdma, reject_with_private_data)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	uint8_t cpd[16], rpd[32];
	conf_pattern(cpd, sizeof(cpd), 0x1EC);
	conf_pattern(rpd, sizeof(rpd), 0x2EC);
	int cctx;
	struct ferry_hal_rdma_qp *cqp = NULL;
	struct ferry_hal_rdma_qp_attr ca = rt_attr(&t, &t.c, &cctx);
	CONF_RC(t.R->connect(t.dev, t.laddr, &ca, cpd, sizeof(cpd), 5000, &cqp), 0, "connect");
	struct ferry_hal_rdma_req *req = take_req(&t, NULL, NULL);
	t.R->reject(req, rpd, sizeof(rpd));
	const void *pd = NULL;
	uint32_t pl = 0;
	int st = state_after(&t, cqp, -EINPROGRESS, &pd, &pl, "the client after reject");
	CONF_RC(st, -ECONNREFUSED, "rdma.h qp_state of a rejected connection");
	CONF_ASSERT(pl >= sizeof(rpd) && pd && memcmp(pd, rpd, sizeof(rpd)) == 0,
		    "rdma.h qp_state: the reject's private data (32 bytes) must arrive (prefix "
		    "compared): got %u bytes%s",
		    pl, pl >= sizeof(rpd) && pd ? ", different" : "");
	for (int i = 0; i < 20; i++)
		pump(&t);
	CONF_RC(t.R->qp_state(cqp, NULL, NULL), -ECONNREFUSED,
		"rdma.h qp_state: failures are sticky");
	CONF_RC(t.R->get_request(t.l, &req, NULL, NULL), -EAGAIN,
		"get_request after the only request was rejected");
	CONF_ASSERT(t.c.n == 0 && t.s.n == 0, "completions without work requests");
	t.R->qp_destroy(cqp);
	rt_close(&t);
}

/* ---- work requests -------------------------------------------------------------------------- */

CONF_TEST(rdma, send_recv_sges_byte_exact)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	rt_connect(&t, &cqp, &cctx, &sqp, &sctx);
	struct rbuf rb, sb;
	rbuf_init(&t, &rb, 8192, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 31);
	rbuf_init(&t, &sb, 8192, 0, 32);
	uint32_t n = t.nsge;
	/* Two receives of n SGEs each (gaps of 29 bytes between them), capacity 1000 / 600. */
	struct ferry_hal_rdma_sge r1[MAX_SGE], r2[MAX_SGE], s1[MAX_SGE], s2[MAX_SGE];
	layout(&rb, 7, 1000, n, 29, r1);
	layout(&rb, 4000, 600, n, 29, r2);
	CONF_RC(t.R->post_recv(sqp, 0x5201, r1, n), 0, "post_recv of n SGEs");
	CONF_RC(t.R->post_recv(sqp, 0x5202, r2, n), 0, "post_recv of n SGEs");
	/* Messages split differently: 987 bytes (13 short of the receive), then 600 exactly. */
	layout(&sb, 3, 987, n, 101, s1);
	layout(&sb, 5000, 600, n, 3, s2);
	struct ferry_hal_rdma_wr w[2] = {
		{.wr_id = 0x5301,
		 .opcode = FERRY_HAL_RDMA_OP_SEND,
		 .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
		 .sge = s1,
		 .nsge = n,
		 .next = &w[1]},
		{.wr_id = 0x5302,
		 .opcode = FERRY_HAL_RDMA_OP_SEND,
		 .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
		 .sge = s2,
		 .nsge = n},
	};
	CONF_RC(t.R->post_send(cqp, w, NULL), 0, "post_send of a list of two SENDs");
	wait_wc(&t, &t.s, 2, "two receives");
	wait_wc(&t, &t.c, 2, "two signaled SENDs");
	quiet(&t, "two SENDs");
	expect_wc(&t.s, 0x5201, FERRY_HAL_RDMA_OP_RECV, 0, &sctx, 987);
	expect_wc(&t.s, 0x5202, FERRY_HAL_RDMA_OP_RECV, 0, &sctx, 600);
	expect_wc(&t.c, 0x5301, FERRY_HAL_RDMA_OP_SEND, 0, &cctx, 0);
	expect_wc(&t.c, 0x5302, FERRY_HAL_RDMA_OP_SEND, 0, &cctx, 0);
	CONF_ASSERT(t.s.wc[0].wr_id == 0x5201,
		    "rdma.h RC: receives complete in the order they were posted (first: 0x%llx)",
		    (unsigned long long)t.s.wc[0].wr_id);
	uint8_t msg[1000];
	uint32_t l1 = gather(&sb, s1, n, msg);
	scatter_exp(&rb, r1, n, msg, l1);
	uint32_t l2 = gather(&sb, s2, n, msg);
	scatter_exp(&rb, r2, n, msg, l2);
	rbuf_check(&rb, "rdma.h SEND/RECV: the message is scattered over the receive's SGEs in "
			"order");
	CONF_ASSERT(memcmp(sb.p, sb.exp, sb.len) == 0, "a SEND changed its source buffer");

	/* An unsignaled SEND completes silently: only its receive shows it. */
	layout(&rb, 6000, 1000, n, 11, r1);
	CONF_RC(t.R->post_recv(sqp, 0x5203, r1, n), 0, "post_recv");
	reset(&t);
	CONF_RC(post1(&t, cqp, 0x5303, FERRY_HAL_RDMA_OP_SEND, 0, s1, 2, 0, 0), 0,
		"post_send of an unsignaled SEND");
	wait_wc(&t, &t.s, 1, "the receive of an unsignaled SEND");
	quiet(&t, "an unsignaled SEND (no completion of it)");
	CONF_ASSERT(t.c.n == 0, "rdma.h: an unsignaled SEND that succeeds completes silently");
	uint32_t l3 = gather(&sb, s1, 2, msg);
	expect_wc(&t.s, 0x5203, FERRY_HAL_RDMA_OP_RECV, 0, &sctx, l3);
	scatter_exp(&rb, r1, n, msg, l3);
	rbuf_check(&rb, "rdma.h SEND/RECV (unsignaled SEND)");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rbuf_free(&t, &rb);
	rbuf_free(&t, &sb);
	rt_close(&t);
}

CONF_TEST(rdma, zero_length_send)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	rt_connect(&t, &cqp, &cctx, &sqp, &sctx);
	struct rbuf rb;
	rbuf_init(&t, &rb, 256, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 41);
	struct ferry_hal_rdma_sge r = sge_of(&rb, 64, 64);
	CONF_RC(t.R->post_recv(sqp, 0x5401, &r, 1), 0, "post_recv");
	CONF_RC(post1(&t, cqp, 0x5402, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED, NULL,
		      0, 0, 0),
		0, "rdma.h post_send: nsge 0 is a zero-length SEND");
	wait_wc(&t, &t.s, 1, "the receive of a zero-length SEND");
	wait_wc(&t, &t.c, 1, "a zero-length SEND");
	quiet(&t, "a zero-length SEND");
	expect_wc(&t.s, 0x5401, FERRY_HAL_RDMA_OP_RECV, 0, &sctx, 0);
	expect_wc(&t.c, 0x5402, FERRY_HAL_RDMA_OP_SEND, 0, &cctx, 0);
	rbuf_check(&rb, "a zero-length SEND changed its receive buffer");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rbuf_free(&t, &rb);
	rt_close(&t);
}

CONF_TEST(rdma, write_read_sges_byte_exact)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	rt_connect(&t, &cqp, &cctx, &sqp, &sctx);
	struct rbuf mb, lb; /* the server's region (the remote one), the client's local one */
	rbuf_init(&t, &mb, 8192, RACCESS, 51);
	rbuf_init(&t, &lb, 8192, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 52);
	uint32_t n = t.nsge;
	struct ferry_hal_rdma_sge ws[MAX_SGE], rs[MAX_SGE];
	uint8_t tmp[2048];

	/* WRITE of 1500 bytes from n client SGEs to the server's region at +333. */
	layout(&lb, 9, 1500, n, 40, ws);
	uint32_t wl = gather(&lb, ws, n, tmp);
	memcpy(mb.exp + 333, tmp, wl);
	/* READ of 1300 bytes of the server's region at +5000 into n client SGEs. */
	layout(&lb, 3000, 1300, n, 17, rs);
	scatter_exp(&lb, rs, n, mb.p + 5000, 1300);
	struct ferry_hal_rdma_wr w[2] = {
		{.wr_id = 0x5701,
		 .opcode = FERRY_HAL_RDMA_OP_WRITE,
		 .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
		 .sge = ws,
		 .nsge = n,
		 .rkey = mb.k.rkey,
		 .remote_addr = mb.k.addr + 333,
		 .next = &w[1]},
		{.wr_id = 0x5702,
		 .opcode = FERRY_HAL_RDMA_OP_READ,
		 .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
		 .sge = rs,
		 .nsge = n,
		 .rkey = mb.k.rkey,
		 .remote_addr = mb.k.addr + 5000},
	};
	CONF_RC(t.R->post_send(cqp, w, NULL), 0, "post_send of a WRITE and a READ");
	wait_wc(&t, &t.c, 2, "a signaled WRITE and READ");
	quiet(&t, "a WRITE and a READ");
	expect_wc(&t.c, 0x5701, FERRY_HAL_RDMA_OP_WRITE, 0, &cctx, 0);
	expect_wc(&t.c, 0x5702, FERRY_HAL_RDMA_OP_READ, 0, &cctx, 0);
	CONF_ASSERT(t.s.n == 0,
		    "rdma.h: RDMA WRITE / READ are one-sided: the peer's CQ got %u "
		    "completions",
		    t.s.n);
	rbuf_check(&mb, "rdma.h RDMA WRITE: the SGEs' bytes land in order at remote_addr");
	rbuf_check(&lb, "rdma.h RDMA READ: the remote bytes land in order over the SGEs");

	/* An unsignaled WRITE, then a READ of what it wrote: RC keeps them in order. */
	reset(&t);
	struct ferry_hal_rdma_sge a = sge_of(&lb, 6000, 64), b = sge_of(&lb, 7000, 64);
	memcpy(mb.exp + 7100, lb.p + 6000, 64);
	memcpy(lb.exp + 7000, lb.p + 6000, 64);
	struct ferry_hal_rdma_wr v[2] = {
		{.wr_id = 0x5703,
		 .opcode = FERRY_HAL_RDMA_OP_WRITE,
		 .sge = &a,
		 .nsge = 1,
		 .rkey = mb.k.rkey,
		 .remote_addr = mb.k.addr + 7100,
		 .next = &v[1]},
		{.wr_id = 0x5704,
		 .opcode = FERRY_HAL_RDMA_OP_READ,
		 .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
		 .sge = &b,
		 .nsge = 1,
		 .rkey = mb.k.rkey,
		 .remote_addr = mb.k.addr + 7100},
	};
	CONF_RC(t.R->post_send(cqp, v, NULL), 0, "post_send of an unsignaled WRITE and a READ");
	wait_wc(&t, &t.c, 1, "the READ after an unsignaled WRITE");
	quiet(&t, "an unsignaled WRITE and a READ");
	expect_wc(&t.c, 0x5704, FERRY_HAL_RDMA_OP_READ, 0, &cctx, 0);
	CONF_ASSERT(t.c.n == 1, "rdma.h: an unsignaled WRITE that succeeds completes silently");
	rbuf_check(&mb, "rdma.h RDMA WRITE (unsignaled)");
	rbuf_check(&lb, "rdma.h RC order: a READ after a WRITE of the same bytes reads them");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rbuf_free(&t, &mb);
	rbuf_free(&t, &lb);
	rt_close(&t);
}

CONF_TEST(rdma, malformed_posts_refused)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	rt_connect(&t, &cqp, &cctx, &sqp, &sctx);
	struct rbuf rb, sb;
	rbuf_init(&t, &rb, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 61);
	rbuf_init(&t, &sb, 4096, 0, 62);
	struct ferry_hal_rdma_sge many[MAX_SGE + 1];
	layout(&rb, 0, 500, t.nsge + 1, 0, many);
	CONF_RC(t.R->post_recv(sqp, 0x5501, many, t.nsge + 1), -EINVAL,
		"rdma.h post_recv: more than max_recv_sge entries");
	struct ferry_hal_rdma_sge r = sge_of(&rb, 1000, 200), s = sge_of(&sb, 50, 150);
	CONF_RC(t.R->post_recv(sqp, 0x5502, &r, 1), 0, "post_recv");
	struct ferry_hal_rdma_wr w[2] = {
		{.wr_id = 0x5503,
		 .opcode = FERRY_HAL_RDMA_OP_SEND,
		 .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
		 .sge = &s,
		 .nsge = 1,
		 .next = &w[1]},
		{.wr_id = 0x5504,
		 .opcode = FERRY_HAL_RDMA_OP_RECV,
		 .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
		 .sge = &s,
		 .nsge = 1},
	};
	const struct ferry_hal_rdma_wr *bad = NULL;
	CONF_RC(t.R->post_send(cqp, w, &bad), -EINVAL,
		"rdma.h post_send: a list whose second request has opcode RECV");
	CONF_ASSERT(bad == &w[1],
		    "rdma.h post_send: *bad is the first request not posted (want the second)");
	w[1].opcode = FERRY_HAL_RDMA_OP_SEND;
	w[1].nsge = t.nsge + 1;
	w[1].sge = many;
	CONF_RC(t.R->post_send(cqp, &w[1], &bad), -EINVAL,
		"rdma.h post_send: more SGEs than max_send_sge");
	CONF_ASSERT(bad == &w[1], "rdma.h post_send: *bad is the request not posted");
	/* The first request of the list was posted: it and its receive complete once. */
	wait_wc(&t, &t.s, 1, "the receive of the SEND posted before the bad request");
	wait_wc(&t, &t.c, 1, "the SEND posted before the bad request");
	quiet(&t, "one SEND of a partly refused list");
	expect_wc(&t.c, 0x5503, FERRY_HAL_RDMA_OP_SEND, 0, &cctx, 0);
	expect_wc(&t.s, 0x5502, FERRY_HAL_RDMA_OP_RECV, 0, &sctx, 150);
	memcpy(rb.exp + 1000, sb.p + 50, 150);
	rbuf_check(&rb, "rdma.h post_send: the requests before *bad are posted");
	CONF_RC(t.R->qp_state(cqp, NULL, NULL), 0, "refused posts do not break the QP");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rbuf_free(&t, &rb);
	rbuf_free(&t, &sb);
	rt_close(&t);
}

/* ---- errors --------------------------------------------------------------------------------- */

CONF_TEST(rdma, bad_rkey_errors_qp_and_flushes_receives)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	rt_connect(&t, &cqp, &cctx, &sqp, &sctx);
	struct rbuf mb, lb;
	rbuf_init(&t, &mb, 4096, RACCESS, 71);
	rbuf_init(&t, &lb, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 72);
	uint32_t badkey = mb.k.rkey ^ 0xA5000000u;
	if (badkey == lb.k.rkey)
		badkey ^= 0x00A50000u;
	struct ferry_hal_rdma_sge r1 = sge_of(&lb, 0, 100), r2 = sge_of(&lb, 200, 100);
	CONF_RC(t.R->post_recv(cqp, 0x5801, &r1, 1), 0, "post_recv");
	CONF_RC(t.R->post_recv(cqp, 0x5802, &r2, 1), 0, "post_recv");
	struct ferry_hal_rdma_sge d = sge_of(&lb, 1000, 512);
	CONF_RC(post1(&t, cqp, 0x5803, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED, &d, 1,
		      mb.k.addr, badkey),
		0, "post_send of a READ with a wrong rkey");
	wait_wc(&t, &t.c, 3, "a READ with a bad rkey and two receives flushed");
	int st = state_after(&t, cqp, 0, NULL, NULL, "the QP after a remote access error");
	quiet(&t, "a remote access error");
	expect_wc(&t.c, 0x5803, FERRY_HAL_RDMA_OP_READ, -EREMOTEIO, &cctx, 0);
	expect_wc(&t.c, 0x5801, FERRY_HAL_RDMA_OP_RECV, -ECANCELED, &cctx, 0);
	expect_wc(&t.c, 0x5802, FERRY_HAL_RDMA_OP_RECV, -ECANCELED, &cctx, 0);
	CONF_ASSERT(st != 0 && st != -EINPROGRESS,
		    "rdma.h: an RC QP that had an error goes to the error state (qp_state %d)", st);
	CONF_RC(t.R->qp_state(cqp, NULL, NULL), st, "rdma.h qp_state: failures are sticky");
	rbuf_check(&lb, "a refused READ or a flushed receive changed local memory");
	rbuf_check(&mb, "a READ with a bad rkey changed the remote region");
	CONF_RC(t.R->post_recv(cqp, 0x5804, &r1, 1), -ECONNRESET,
		"rdma.h post_recv on a QP in error");
	CONF_RC(post1(&t, cqp, 0x5805, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED, &d, 1,
		      mb.k.addr, mb.k.rkey),
		-ECONNRESET, "rdma.h post_send on a QP in error");
	quiet(&t, "posts refused on a QP in error");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rbuf_free(&t, &mb);
	rbuf_free(&t, &lb);
	rt_close(&t);
}

CONF_TEST(rdma, deregistered_region_refused_to_peer)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	rt_connect(&t, &cqp, &cctx, &sqp, &sctx);
	struct rbuf mb, lb;
	rbuf_init(&t, &mb, 4096, FERRY_HAL_RDMA_ACCESS_REMOTE_READ, 81);
	rbuf_init(&t, &lb, 4096, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 82);
	struct ferry_hal_rdma_mr_keys k = mb.k;
	struct ferry_hal_rdma_sge d1 = sge_of(&lb, 0, 1024), d2 = sge_of(&lb, 2048, 1024);
	CONF_RC(post1(&t, cqp, 0x5901, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED, &d1, 1,
		      k.addr + 512, k.rkey),
		0, "post_send READ");
	wait_wc(&t, &t.c, 1, "a READ of a registered region");
	expect_wc(&t.c, 0x5901, FERRY_HAL_RDMA_OP_READ, 0, &cctx, 0);
	memcpy(lb.exp, mb.p + 512, 1024);
	rbuf_check(&lb, "rdma.h RDMA READ");
	uint64_t before = 0;
	struct ferry_hal_rdma_stats stats;
	if (t.R->rdma_stats && t.R->rdma_stats(t.dev, &stats) == 0)
		before = stats.mr_deregs;
	t.R->mr_dereg(mb.mr);
	mb.mr = NULL;
	if (t.R->rdma_stats) {
		CONF_RC(t.R->rdma_stats(t.dev, &stats), 0, "rdma_stats");
		CONF_ASSERT(stats.mr_deregs == before + 1,
			    "rdma.h stats: mr_deregs %llu after one mr_dereg (was %llu)",
			    (unsigned long long)stats.mr_deregs, (unsigned long long)before);
	}
	CONF_RC(post1(&t, cqp, 0x5902, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED, &d2, 1,
		      k.addr + 512, k.rkey),
		0, "post_send READ of a deregistered region");
	wait_wc(&t, &t.c, 2, "a READ of a deregistered region");
	quiet(&t, "a READ of a deregistered region");
	expect_wc(&t.c, 0x5902, FERRY_HAL_RDMA_OP_READ, -EREMOTEIO, &cctx, 0);
	rbuf_check(&lb, "rdma.h mr_dereg: from its return no access through its keys succeeds "
			"(the READ's destination changed)");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rbuf_free(&t, &mb);
	rbuf_free(&t, &lb);
	rt_close(&t);
}

/* ---- destroy -------------------------------------------------------------------------------- */

CONF_TEST(rdma, destroyed_qp_completes_nothing_other_qp_runs)
{
	struct rt t;
	rt_open(param, &t);
	rt_listen(&t);
	int c1ctx, s1ctx, c2ctx, s2ctx;
	struct ferry_hal_rdma_qp *c1, *s1, *c2, *s2;
	rt_connect(&t, &c1, &c1ctx, &s1, &s1ctx);
	rt_connect(&t, &c2, &c2ctx, &s2, &s2ctx);
	struct rbuf rb, sb;
	rbuf_init(&t, &rb, 8192, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 91);
	rbuf_init(&t, &sb, 4096, 0, 92);
	struct ferry_hal_rdma_sge r[6];
	for (uint32_t i = 0; i < 6; i++)
		r[i] = sge_of(&rb, 1024u * i, 512);
	for (uint32_t i = 0; i < 4; i++)
		CONF_RC(t.R->post_recv(s1, 0x5A01 + i, &r[i], 1), 0, "post_recv (QP 1)");
	CONF_RC(t.R->post_recv(s2, 0x5B01, &r[4], 1), 0, "post_recv (QP 2)");
	CONF_RC(t.R->post_recv(s2, 0x5B02, &r[5], 1), 0, "post_recv (QP 2)");
	/* QP 1 works: one of its receives completes. */
	struct ferry_hal_rdma_sge s = sge_of(&sb, 10, 300);
	CONF_RC(post1(&t, c1, 0x5C01, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED, &s, 1,
		      0, 0),
		0, "post_send (QP 1)");
	wait_wc(&t, &t.s, 1, "a receive of QP 1");
	wait_wc(&t, &t.c, 1, "a SEND of QP 1");
	expect_wc(&t.s, 0x5A01, FERRY_HAL_RDMA_OP_RECV, 0, &s1ctx, 300);
	expect_wc(&t.c, 0x5C01, FERRY_HAL_RDMA_OP_SEND, 0, &c1ctx, 0);
	memcpy(rb.exp, sb.p + 10, 300);
	/* Destroyed with three receives posted: none of them ever completes. */
	reset(&t);
	t.R->qp_destroy(s1);
	int st = state_after(&t, c1, 0, NULL, NULL, "the peer of a destroyed QP");
	CONF_ASSERT(st != -EINPROGRESS && st != 0,
		    "rdma.h qp_destroy: the peer sees its QP go to the error state (%d)", st);
	quiet(&t, "after qp_destroy");
	for (uint32_t i = 0; i < t.s.n; i++)
		CONF_ASSERT(t.s.wc[i].qp_ctx != &s1ctx,
			    "rdma.h qp_destroy: no completion of its work requests after it "
			    "returns; wr_id 0x%llx status %d came",
			    (unsigned long long)t.s.wc[i].wr_id, t.s.wc[i].status);
	/* The other QP on the same CQs still works. */
	reset(&t);
	struct ferry_hal_rdma_sge s2g = sge_of(&sb, 1000, 400);
	CONF_RC(post1(&t, c2, 0x5C02, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED, &s2g, 1,
		      0, 0),
		0, "post_send (QP 2) after QP 1 was destroyed");
	wait_wc(&t, &t.s, 1, "a receive of QP 2 after QP 1 was destroyed");
	wait_wc(&t, &t.c, 1, "a SEND of QP 2 after QP 1 was destroyed");
	quiet(&t, "one SEND on QP 2");
	expect_wc(&t.s, 0x5B01, FERRY_HAL_RDMA_OP_RECV, 0, &s2ctx, 400);
	expect_wc(&t.c, 0x5C02, FERRY_HAL_RDMA_OP_SEND, 0, &c2ctx, 0);
	memcpy(rb.exp + 4096, sb.p + 1000, 400);
	rbuf_check(&rb, "rdma.h: another QP of the CQ receives right after a qp_destroy (and the "
			"destroyed QP's receive buffers stay untouched)");
	CONF_RC(t.R->qp_state(c2, NULL, NULL), 0, "QP 2 stays established");
	t.R->qp_destroy(c1);
	t.R->qp_destroy(c2);
	t.R->qp_destroy(s2);
	rbuf_free(&t, &rb);
	rbuf_free(&t, &sb);
	rt_close(&t);
}

/* ---- cq_wait -------------------------------------------------------------------------------- */

/* cq_wait(@p cq, 100 ms) must time out within a few tries (a try may report an event). */
static void wait_times_out(struct rt *t, struct ferry_hal_rdma_cq *cq, const char *what)
{
	int rc = 0;
	uint64_t dt = 0;
	for (int i = 0; i < 5 && rc == 0; i++) {
		uint64_t t0 = conf_now_ns();
		rc = t->R->cq_wait(cq, 100000);
		dt = conf_now_ns() - t0;
		CONF_ASSERT(rc == 0 || rc == -ETIMEDOUT,
			    "rdma.h cq_wait: 0 or -ETIMEDOUT, got %d (%s; %s)", rc,
			    ferry_strerror(rc), conf_last_error());
		CONF_ASSERT(dt < 3000000000ull, "rdma.h cq_wait: 100 ms timeout took %llu ms",
			    (unsigned long long)(dt / 1000000));
		if (rc == 0)
			pump(t);
	}
	CONF_RC(rc, -ETIMEDOUT, what);
	CONF_ASSERT(dt >= 50000000ull,
		    "rdma.h cq_wait: -ETIMEDOUT (nothing came) after %llu us of a 100 ms timeout",
		    (unsigned long long)(dt / 1000));
}

CONF_TEST(rdma, cq_wait_times_out_with_nothing_pending)
{
	struct rt t;
	rt_open(param, &t);
	if (!t.R->cq_wait) {
		ferry_device_close(t.dev);
		CONF_SKIP("cq_wait is NULL (optional)");
	}
	rt_listen(&t);
	wait_times_out(&t, t.c.cq, "rdma.h cq_wait on a CQ without QPs");
	int cctx, sctx;
	struct ferry_hal_rdma_qp *cqp, *sqp;
	rt_connect(&t, &cqp, &cctx, &sqp, &sctx);
	for (int i = 0; i < 50; i++)
		pump(&t);
	wait_times_out(&t, t.c.cq, "rdma.h cq_wait on an idle connection (client CQ)");
	wait_times_out(&t, t.s.cq, "rdma.h cq_wait on an idle connection (server CQ)");
	CONF_ASSERT(t.s.n == 0 && t.c.n == 0, "completions without work requests");
	t.R->qp_destroy(cqp);
	t.R->qp_destroy(sqp);
	rt_close(&t);
}
