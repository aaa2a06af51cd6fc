/*
 * Helpers shared by the nvmf bdev tests (tests/unit/host/): a deterministic data pattern, the
 * bdev's counters read with an assertion, one I/O submitted and waited for (bounded), and
 * Ferry's own NVMe/TCP target in-process (a malloc bdev, a subsystem, the "tcp" transport on
 * 127.0.0.1:0, a polling thread) that can be killed and started again on the same address.
 */
#ifndef NVMF_TEST_UTIL_H
#define NVMF_TEST_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/nvme.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include "test_mock_util.h"

/* @p n bytes of a pattern that depends on @p seed and on the offset (also across 512-byte
 * sectors), so misplaced or stale data never compares equal. */
__attribute__((unused)) static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 9)) ^ seed);
}

__attribute__((unused)) static struct ferry_bdev_nvmf_stats stats_of(struct ferry_bdev *b)
{
	struct ferry_bdev_nvmf_stats s = {.size = sizeof(s)};
	cr_assert_eq(ferry_bdev_nvmf_get_stats(b, &s), 0);
	return s;
}

/* --- one I/O and its completion --- */

struct done {
	int calls;
	int status;
};

__attribute__((unused)) static void done_cb(struct ferry_bdev_io *io, void *arg)
{
	struct done *d = arg;
	d->calls++;
	d->status = io->status;
}

/* @p io set up for one I/O completing into @p d (zeroed). */
__attribute__((unused)) static void io_prep(struct ferry_bdev_io *io, struct done *d,
					    enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
					    const struct ferry_mem *mem)
{
	memset(io, 0, sizeof(*io));
	memset(d, 0, sizeof(*d));
	io->type = type;
	io->offset_blocks = lba;
	io->num_blocks = n;
	if (mem)
		io->mem = *mem;
	io->cb = done_cb;
	io->cb_arg = d;
}

#define IO_WAIT_NS 20000000000ull /* the bound of every wait for one I/O */

/* Poll @p io (also the domain a host-memory I/O moves its data through) until @p d saw a
 * completion or IO_WAIT_NS passed; returns the completions seen. */
__attribute__((unused)) static int io_wait(struct ferry_bdev_io *io, const struct done *d)
{
	uint64_t end = tm_now_ns() + IO_WAIT_NS;
	while (!d->calls && tm_now_ns() < end)
		ferry_bdev_io_poll(io);
	return d->calls;
}

/* One I/O (with an accel sequence on @p ch unless NULL), waited for: asserts it completed
 * exactly once; returns the submit error or the I/O's status. */
__attribute__((unused)) static int run_one(struct ferry_bdev *b, struct ferry_accel_chan *ch,
					   enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
					   const struct ferry_mem *mem)
{
	struct ferry_bdev_io io;
	struct done d;
	io_prep(&io, &d, type, lba, n, mem);
	if (ch)
		cr_assert_eq(ferry_seq_create(ch, &io.seq), 0);
	int rc = ferry_bdev_submit(b, &io);
	if (rc) {
		if (io.seq)
			ferry_seq_abort(io.seq);
		return rc;
	}
	cr_assert_eq(io_wait(&io, &d), 1, "I/O did not complete within %llu s",
		     IO_WAIT_NS / 1000000000ull);
	return d.status;
}

/* --- Ferry's NVMe/TCP target in-process --- */

struct tgt_cfg {
	const char *bdev_name; /* the malloc bdev */
	uint32_t block_size, num_blocks, md_size;
	const char *nqn, *serial;
	const char *args; /* the transport's */
	/* The target transport ("tcp" when NULL), its device (NULL: the transport's default)
	 * and the listen-address getter of its header (NULL: the tcp transport's). */
	const char *trtype;
	struct ferry_device *dev;
	int (*listen_addr)(struct ferry_transport *t, unsigned int index, char *buf, size_t len);
};

struct tgt {
	struct tgt_cfg cfg;
	struct ferry_bdev *malloc;
	struct ferry_nvme_subsystem *ss;
	struct ferry_transport *t;
	char addr[64]; /* where it listens */
	pthread_t th;
	atomic_int stop;
	int running;
	int ss_recreated; /* times tgt_start() could not reuse the subsystem */
};

__attribute__((unused)) static void *tgt_thread(void *arg)
{
	struct tgt *g = arg;
	while (!atomic_load(&g->stop))
		ferry_transport_poll(g->t, 0);
	return NULL;
}

__attribute__((unused)) static void tgt_ss_create(struct tgt *g)
{
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = g->cfg.nqn,
					       .serial = g->cfg.serial};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &g->ss), 0, "%s", ferry_last_error());
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = g->malloc, .nsid = 1};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(g->ss, &no, NULL), 0, "%s", ferry_last_error());
}

/* The malloc bdev and the subsystem of @p c, nothing listening yet. */
__attribute__((unused)) static void tgt_init(struct tgt *g, const struct tgt_cfg *c)
{
	memset(g, 0, sizeof(*g));
	g->cfg = *c;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = c->bdev_name,
					    .block_size = c->block_size,
					    .num_blocks = c->num_blocks,
					    .md_size = c->md_size};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &g->malloc), 0, "%s", ferry_last_error());
	tgt_ss_create(g);
}

/* A transport listening on @p addr ("127.0.0.1:0" the first time, then the address it had
 * before tgt_stop()) and its polling thread; skips the test without such a transport. */
__attribute__((unused)) static void tgt_start(struct tgt *g, const char *addr)
{
	const char *tr = g->cfg.trtype ? g->cfg.trtype : "tcp";
	struct ferry_transport_opts to = {.size = sizeof(to), .device = g->cfg.dev,
					  .args = g->cfg.args};
	int rc = ferry_transport_create(tr, &to, &g->t);
	if (rc == -ENOENT || rc == -ENOTSUP)
		cr_skip_test("no %s target transport", tr);
	cr_assert_eq(rc, 0, "create %s: %d (%s)", tr, rc, ferry_last_error());
	rc = ferry_transport_listen(g->t, g->ss, addr);
	if (rc != 0 && strcmp(addr, "127.0.0.1:0") != 0) {
		/* the old subsystem could not be reused: recreate it over the same bdev */
		fprintf(stderr, "restart: listen with the old subsystem: %d (%s); recreating it\n",
			rc, ferry_last_error());
		cr_assert_eq(ferry_nvme_subsystem_destroy(g->ss), 0, "%s", ferry_last_error());
		tgt_ss_create(g);
		g->ss_recreated++;
		rc = ferry_transport_listen(g->t, g->ss, addr);
	}
	cr_assert_eq(rc, 0, "listen %s: %d (%s)", addr, rc, ferry_last_error());
	cr_assert_eq((g->cfg.listen_addr ? g->cfg.listen_addr
					 : ferry_tcp_transport_get_listen_addr)(g->t, 0, g->addr,
										sizeof(g->addr)),
		     0);
	atomic_store(&g->stop, 0);
	cr_assert_eq(pthread_create(&g->th, NULL, tgt_thread, g), 0);
	g->running = 1;
}

/* Kill the target: stop its thread, destroy the transport (connections and controllers
 * closed abruptly); the bdev and the subsystem stay for tgt_start(). */
__attribute__((unused)) static void tgt_stop(struct tgt *g)
{
	if (!g->running)
		return;
	atomic_store(&g->stop, 1);
	pthread_join(g->th, NULL);
	ferry_transport_destroy(g->t);
	g->t = NULL;
	g->running = 0;
}

/* tgt_stop() and tgt_start() again on the same address. */
__attribute__((unused)) static void tgt_restart(struct tgt *g)
{
	char addr[sizeof(g->addr)];
	snprintf(addr, sizeof(addr), "%s", g->addr);
	tgt_stop(g);
	tgt_start(g, addr);
	cr_assert_str_eq(g->addr, addr);
}

__attribute__((unused)) static void tgt_up(struct tgt *g, const struct tgt_cfg *c)
{
	tgt_init(g, c);
	tgt_start(g, "127.0.0.1:0");
}

__attribute__((unused)) static void tgt_down(struct tgt *g)
{
	tgt_stop(g);
	cr_assert_eq(ferry_nvme_subsystem_destroy(g->ss), 0, "%s", ferry_last_error());
	cr_assert_eq(ferry_bdev_destroy(g->malloc), 0);
}

#endif /* NVMF_TEST_UTIL_H */
