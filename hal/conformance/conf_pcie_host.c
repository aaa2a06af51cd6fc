/*
 * Conformance, the PCIe endpoint class driven from the host side (ferry/hal/pcie_ep.h), for a
 * backend whose hooks can act as the host (conf_hooks::host_mmio_write/read,
 * host_msix_count; skipped otherwise, with the reason):
 *   pcie_ep.host_accesses_in_order  a host thread makes a seeded random mix of BAR0 register
 *                                   writes, reads and doorbell writes while the check polls
 *                                   the endpoint: every register access reaches the handlers
 *                                   exactly once, in the host's order, with its offset, size
 *                                   and value; every read returns what the handler answered
 *                                   (a register file, so a read overtaking an earlier write
 *                                   returns a stale value and fails); doorbells arrive on
 *                                   the doorbell handler with their index, in order per
 *                                   doorbell, possibly coalesced, the last value always;
 *   pcie_ep.msix_delivery           each raised vector counts on the host, no other vector
 *                                   moves; a function not attached answers as an unclaimed
 *                                   BAR; after detach nothing reaches the handlers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "conf.h"

#define REGS 512u /* 8-byte registers below the doorbells: BAR0 0x0..0x1000 */
#define DB_OFF 0x1000u
#define DB_COUNT 8u
#define OPS 3000u

enum ev_kind {
	EV_READ,
	EV_WRITE,
	EV_DOORBELL
};

struct ev {
	uint8_t kind;
	uint8_t size;
	uint32_t index; /* doorbell index */
	uint64_t off, val;
};

struct host_op {
	uint8_t kind;
	uint8_t size;
	uint64_t off, val; /* val: written, or expected on a read */
};

struct fw {
	uint64_t regs[REGS]; /* the firmware's register file */
	struct ev *log;
	uint32_t nlog, cap;
	int overflow, bad_bar;
};

static void fw_log(struct fw *f, struct ev e)
{
	if (f->nlog == f->cap) {
		f->overflow = 1;
		return;
	}
	f->log[f->nlog++] = e;
}

static uint64_t mask_of(uint32_t size)
{
	return size >= 8 ? UINT64_MAX : ((uint64_t)1 << (size * 8)) - 1;
}

/* Little-endian register file of 8-byte cells, accessed by 1/2/4/8 aligned bytes. */
static uint64_t rf_get(const uint64_t *regs, uint64_t off, uint32_t size)
{
	uint64_t cell = regs[off / 8], shift = (off % 8) * 8;
	return (cell >> shift) & mask_of(size);
}

static void rf_put(uint64_t *regs, uint64_t off, uint32_t size, uint64_t val)
{
	uint64_t shift = (off % 8) * 8, m = mask_of(size) << shift;
	regs[off / 8] = (regs[off / 8] & ~m) | ((val << shift) & m);
}

static int fw_read(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t *val)
{
	struct fw *f = ctx;
	if (bar != 0 || off >= (uint64_t)REGS * 8) {
		f->bad_bar = 1;
		*val = 0;
		return 0;
	}
	*val = rf_get(f->regs, off, size);
	fw_log(f, (struct ev){.kind = EV_READ, .size = (uint8_t)size, .off = off, .val = *val});
	return 0;
}

static int fw_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	struct fw *f = ctx;
	if (bar != 0 || off >= (uint64_t)REGS * 8) {
		f->bad_bar = 1;
		return 0;
	}
	rf_put(f->regs, off, size, val);
	fw_log(f, (struct ev){.kind = EV_WRITE, .size = (uint8_t)size, .off = off, .val = val});
	return 0;
}

static void fw_doorbell(void *ctx, uint32_t index, uint32_t value)
{
	struct fw *f = ctx;
	fw_log(f, (struct ev){.kind = EV_DOORBELL, .index = index, .val = value});
}

static const struct ferry_hal_pcie_ep_handlers fw_handlers = {
	.bar_read = fw_read,
	.bar_write = fw_write,
	.doorbell = fw_doorbell,
};

struct host {
	const struct conf_hooks *h;
	struct ferry_device *dev;
	struct host_op *ops;
	uint32_t nops;
	_Atomic int done;
	int rc;           /* first failing hook call */
	uint32_t bad_op;  /* index of the read that returned a wrong value (+1), 0 none */
	uint64_t bad_got; /* what it returned */
};

static void *host_main(void *arg)
{
	struct host *t = arg;
	for (uint32_t i = 0; i < t->nops && !t->rc && !t->bad_op; i++) {
		struct host_op *o = &t->ops[i];
		if (o->kind == EV_READ) {
			uint64_t v = 0;
			t->rc = t->h->host_mmio_read(t->dev, 0, o->off, o->size, &v);
			if (!t->rc && v != o->val) {
				t->bad_op = i + 1;
				t->bad_got = v;
			}
		} else {
			t->rc = t->h->host_mmio_write(t->dev, 0, o->off, o->size, o->val);
		}
	}
	atomic_store(&t->done, 1);
	return NULL;
}

struct pctx {
	struct conf_ctx c;
	const struct ferry_hal_pcie_ep_ops *ep;
	const struct conf_hooks *h;
	struct ferry_hal_pcie_ep_info info;
};

static void pctx_open(const struct conf_param *p, struct pctx *x)
{
	const struct ferry_hal_backend *b = conf_backend(p);
	if (!b->pcie_ep)
		CONF_SKIP("no PCIe endpoint class (ferry_hal_backend::pcie_ep is NULL)");
	x->h = conf_hooks_find(b->name);
	if (!x->h || !x->h->host_mmio_write || !x->h->host_mmio_read || !x->h->host_msix_count)
		CONF_SKIP("no conformance hook acts as the host of this backend's PCIe functions "
			  "(conf_hooks::host_mmio_*)");
	conf_open(p, &x->c);
	x->ep = b->pcie_ep;
	memset(&x->info, 0, sizeof(x->info));
	CONF_RC(x->ep->query(x->c.dev, &x->info), 0, "pcie_ep query");
	CONF_ASSERT(x->info.bar0_size >= DB_OFF + 4 * DB_COUNT,
		    "BAR0 of %u bytes: this check needs registers below 0x%x and %u doorbells",
		    x->info.bar0_size, DB_OFF, DB_COUNT);
}

/* Poll until @p t is done and the handlers are quiet (bounded). */
static void poll_until_done(struct pctx *x, struct host *t, struct fw *f)
{
	uint64_t end = conf_now_ns() + 20000000000ull;
	uint32_t quiet = 0;
	while (quiet < 200) {
		int n = x->ep->poll(x->c.dev, 64);
		CONF_ASSERT(n >= 0, "pcie_ep poll returned %d (%s)", n, ferry_strerror(n));
		if (n == 0 && (!t || atomic_load(&t->done)))
			quiet++;
		else
			quiet = 0;
		CONF_ASSERT(conf_now_ns() < end,
			    "the host's accesses not delivered after 20 s (%u logged)",
			    f ? f->nlog : 0);
		if (n == 0)
			conf_sleep_us(50);
	}
}

CONF_TEST(pcie_ep, host_accesses_in_order)
{
	struct pctx x;
	pctx_open(param, &x);
	struct fw *f = calloc(1, sizeof(*f));
	struct host t = {.h = x.h, .dev = x.c.dev};
	t.ops = calloc(OPS, sizeof(*t.ops));
	CONF_ASSERT(f && t.ops, "out of memory");
	f->cap = 2 * OPS;
	f->log = calloc(f->cap, sizeof(*f->log));
	CONF_ASSERT(f->log, "out of memory");

	/* The host's program, and what each read must return (the model register file). */
	uint64_t model[REGS] = {0}, rng = conf_seed(param, 0x9C1E);
	static const uint8_t sizes[4] = {1, 2, 4, 8};
	for (uint32_t i = 0; i < OPS; i++) {
		uint64_t r = conf_rand(&rng);
		struct host_op *o = &t.ops[i];
		uint32_t kind = (uint32_t)(r % 10);
		o->size = sizes[(r >> 8) % 4];
		o->off = ((r >> 16) % ((uint64_t)REGS * 8)) & ~(uint64_t)(o->size - 1);
		if (kind < 4) {
			o->kind = EV_WRITE;
			o->val = conf_rand(&rng) & mask_of(o->size);
			rf_put(model, o->off, o->size, o->val);
		} else if (kind < 7) {
			o->kind = EV_READ;
			o->val = rf_get(model, o->off, o->size);
		} else {
			o->kind = EV_DOORBELL;
			o->size = 4;
			o->off = DB_OFF + 4 * ((r >> 16) % DB_COUNT);
			o->val = conf_rand(&rng) & 0xffffffffu;
		}
	}
	t.nops = OPS;
	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o),
						  .doorbell_offset = DB_OFF,
						  .doorbell_count = DB_COUNT,
						  .handlers = &fw_handlers,
						  .ctx = f};
	CONF_RC(x.ep->attach(x.c.dev, 0, &o), 0, "attach function 0");
	pthread_t th;
	CONF_ASSERT(pthread_create(&th, NULL, host_main, &t) == 0, "pthread_create");
	poll_until_done(&x, &t, f);
	pthread_join(th, NULL);

	CONF_ASSERT(t.rc == 0, "the host's access failed: %d (%s); last error: %s", t.rc,
		    ferry_strerror(t.rc), conf_last_error());
	CONF_ASSERT(!f->bad_bar, "an access reached the handlers outside BAR0's register range "
				 "(doorbell writes must go to the doorbell handler)");
	CONF_ASSERT(!f->overflow, "more handler calls than the host made accesses");
	if (t.bad_op) {
		const struct host_op *b = &t.ops[t.bad_op - 1];
		CONF_ASSERT(0,
			    "host read %u (offset 0x%llx, %u bytes) returned 0x%llx, want 0x%llx: "
			    "it overtook an earlier write, or the firmware's answer was lost",
			    t.bad_op - 1, (unsigned long long)b->off, b->size,
			    (unsigned long long)t.bad_got, (unsigned long long)b->val);
	}
	/* Register accesses: exactly the host's, in order. */
	uint32_t k = 0, nreg = 0;
	for (uint32_t i = 0; i < OPS; i++) {
		const struct host_op *h = &t.ops[i];
		if (h->kind == EV_DOORBELL)
			continue;
		nreg++;
		while (k < f->nlog && f->log[k].kind == EV_DOORBELL)
			k++;
		CONF_ASSERT(k < f->nlog, "host access %u (%s at 0x%llx) never reached the handlers",
			    i, h->kind == EV_READ ? "read" : "write", (unsigned long long)h->off);
		const struct ev *e = &f->log[k++];
		CONF_ASSERT(
			e->kind == h->kind && e->off == h->off && e->size == h->size &&
				(h->kind == EV_READ || e->val == h->val),
			"host access %u (%s of %u bytes at 0x%llx, value 0x%llx) reached the "
			"handlers as %s of %u bytes at 0x%llx, value 0x%llx: lost, duplicated or "
			"out of order",
			i, h->kind == EV_READ ? "read" : "write", h->size,
			(unsigned long long)h->off, (unsigned long long)h->val,
			e->kind == EV_READ    ? "read"
			: e->kind == EV_WRITE ? "write"
					      : "doorbell",
			e->size, (unsigned long long)e->off, (unsigned long long)e->val);
	}
	for (; k < f->nlog; k++)
		CONF_ASSERT(f->log[k].kind == EV_DOORBELL,
			    "a register access reached the handlers that the host never made");
	/* Doorbells: per index a subsequence of the host's values, ending with the last one. */
	uint32_t delivered = 0;
	for (uint32_t db = 0; db < DB_COUNT; db++) {
		uint32_t hi = 0, nh = 0;
		uint64_t last = 0;
		for (uint32_t i = 0; i < OPS; i++)
			if (t.ops[i].kind == EV_DOORBELL && t.ops[i].off == DB_OFF + 4 * db) {
				nh++;
				last = t.ops[i].val;
			}
		uint64_t seen_last = 0;
		int seen = 0;
		for (uint32_t e = 0; e < f->nlog; e++) {
			if (f->log[e].kind != EV_DOORBELL || f->log[e].index != db)
				continue;
			delivered++;
			/* find this value at or after hi among the host's writes to db */
			while (hi < OPS && !(t.ops[hi].kind == EV_DOORBELL &&
					     t.ops[hi].off == DB_OFF + 4 * db &&
					     t.ops[hi].val == f->log[e].val))
				hi++;
			CONF_ASSERT(hi < OPS,
				    "doorbell %u delivered value 0x%llx that the host did not write "
				    "(or out of order)",
				    db, (unsigned long long)f->log[e].val);
			hi++;
			seen = 1;
			seen_last = f->log[e].val;
		}
		if (nh)
			CONF_ASSERT(seen && seen_last == last,
				    "doorbell %u: the host's last value 0x%llx was %s", db,
				    (unsigned long long)last,
				    seen ? "not the last one delivered" : "never delivered");
	}
	CONF_INFO("%u register accesses in order, %u doorbell notifications", nreg, delivered);
	x.ep->detach(x.c.dev, 0);
	free(f->log);
	free(f);
	free(t.ops);
	conf_close(&x.c);
}

CONF_TEST(pcie_ep, msix_delivery)
{
	struct pctx x;
	pctx_open(param, &x);
	struct fw f = {0};
	f.cap = 64;
	f.log = calloc(f.cap, sizeof(*f.log));
	CONF_ASSERT(f.log, "out of memory");
	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o),
						  .doorbell_offset = DB_OFF,
						  .doorbell_count = DB_COUNT,
						  .handlers = &fw_handlers,
						  .ctx = &f};
	CONF_RC(x.ep->msix_raise(x.c.dev, 0, 0), -ENODEV, "msix_raise of a function not attached");
	CONF_RC(x.ep->attach(x.c.dev, 0, &o), 0, "attach function 0");
	uint32_t nv = x.info.max_msix < 8 ? x.info.max_msix : 8;
	uint64_t before[8], after[8];
	for (uint32_t v = 0; v < nv; v++)
		CONF_RC(x.h->host_msix_count(x.c.dev, 0, (uint16_t)v, &before[v]), 0,
			"host_msix_count");
	/* Vector v raised v+1 times, every other vector left alone. */
	for (uint32_t v = 0; v < nv; v += 2)
		for (uint32_t r = 0; r <= v; r++)
			CONF_RC(x.ep->msix_raise(x.c.dev, 0, (uint16_t)v), 0, "msix_raise");
	uint64_t end = conf_now_ns() + 2000000000ull;
	for (;;) {
		int all = 1;
		for (uint32_t v = 0; v < nv; v++) {
			CONF_RC(x.h->host_msix_count(x.c.dev, 0, (uint16_t)v, &after[v]), 0,
				"host_msix_count");
			if (v % 2 == 0 && after[v] == before[v])
				all = 0;
		}
		if (all || conf_now_ns() > end)
			break;
		(void)x.ep->poll(x.c.dev, 16);
		conf_sleep_us(200);
	}
	for (uint32_t v = 0; v < nv; v++) {
		uint64_t d = after[v] - before[v];
		if (v % 2 == 0)
			CONF_ASSERT(d >= 1 && d <= v + 1,
				    "vector %u raised %u time(s): the host saw %llu interrupt(s)",
				    v, v + 1, (unsigned long long)d);
		else
			CONF_ASSERT(d == 0, "vector %u was never raised but the host saw %llu", v,
				    (unsigned long long)d);
	}
	/* A function nobody attached answers as an unclaimed BAR. */
	if (x.info.num_functions >= 2) {
		uint64_t v = 0;
		int rc = x.h->host_mmio_read(x.c.dev, 1, 0, 4, &v);
		CONF_ASSERT(rc < 0 || v == 0xffffffffu,
			    "a read of function 1 (not attached) returned 0x%llx, want all ones or "
			    "an error",
			    (unsigned long long)v);
	}
	/* After detach nothing reaches the handlers. */
	x.ep->detach(x.c.dev, 0);
	uint32_t logged = f.nlog;
	int rc = x.h->host_mmio_write(x.c.dev, 0, 8, 4, 0x1234);
	CONF_ASSERT(rc == 0 || rc == -ENODEV || rc == -ETIMEDOUT,
		    "host write to a detached function: %d", rc);
	for (int i = 0; i < 20; i++) {
		(void)x.ep->poll(x.c.dev, 16);
		conf_sleep_us(500);
	}
	CONF_ASSERT(f.nlog == logged, "a write after detach reached the detached handlers");
	free(f.log);
	conf_close(&x.c);
}
