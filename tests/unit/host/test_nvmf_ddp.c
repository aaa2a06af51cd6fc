/*
 * The nvmf bdev on the mock backend's NVMe/TCP offload NIC against Ferry's own NVMe/TCP
 * target (tcp backend, its own thread): verified reads of 4 KiB..1 MiB with header and data
 * digests, and the offload counters exact for each fault model of the NIC: all placed and
 * verified (no copy, no software CRC), every packet missed (software does all), mixed, setup
 * refused, queue refused, resync requests (some pointing at a wrong offset), a lying NIC
 * caught by the debug check; host-memory placement (I/O memory in "mockN.nvme", the pages
 * also mapped for "mockN.nic": 0 bytes through staging, canary pages around untouched) and a
 * destination page the nic function cannot see (staged, data still right).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/mock.h>
#include <ferry/nvme.h>
#include <ferry/tcp_transport.h>
#include <ferry/transport.h>
#include "fake_target.h"
#include "nvmf_test_util.h"
#include "test_accel_util.h"
#include "test_mock_util.h"

#define DDP_NQN "nqn.2026-01.io.ferry:ddp"
#define DDP_BS 4096u
#define DDP_BLOCKS 1024u /* 4 MiB namespace */
#define DDP_MAX (1024u * 1024)

static const struct tgt_cfg DDP_TGT = {.bdev_name = "ddp_malloc",
				       .block_size = DDP_BS,
				       .num_blocks = DDP_BLOCKS,
				       .nqn = DDP_NQN,
				       .serial = "DDP",
				       .args = "max_io_size=1048576,idle_us=0"};
static struct tgt T;

static int run(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
	       const struct ferry_mem *mem)
{
	return run_one(b, NULL, type, lba, n, mem);
}

static int run_sys(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba, void *buf,
		   size_t len)
{
	struct iovec iov = {buf, len};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	return run(b, type, lba, len / DDP_BS, &m);
}

static uint8_t G_ref[DDP_BLOCKS * DDP_BS]; /* what the namespace holds */
static uint8_t G_buf[DDP_MAX + 2 * DDP_BS];

/* The nvmf bdev @p name on @p nic against T, both digests, 2 I/O queues. */
static struct ferry_bdev *bdev_up(struct ferry_device *nic, const char *name, uint32_t flags,
				  uint32_t retry_count, uint32_t reconnect_delay_ms)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = name;
	o.nic = nic;
	o.addr = T.addr;
	o.subnqn = DDP_NQN;
	o.hdgst = 1;
	o.ddgst = 1;
	o.num_io_queues = 2;
	o.flags = flags;
	o.retry_count = retry_count;
	o.reconnect_delay_ms = reconnect_delay_ms;
	struct ferry_bdev *b = NULL;
	int rc = ferry_bdev_nvmf_create(&o, &b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	return b;
}

/* Fill the namespace through the bdev (writes are not offloaded) with a known pattern. */
static void ns_fill(struct ferry_bdev *b)
{
	fill(G_ref, sizeof(G_ref), 77);
	for (uint32_t off = 0; off < sizeof(G_ref); off += DDP_MAX)
		cr_assert_eq(run_sys(b, FERRY_BDEV_IO_WRITE, off / DDP_BS, G_ref + off, DDP_MAX), 0,
			     "%s", ferry_last_error());
}

/* Reads of 4 KiB..1 MiB into local memory, each checked byte for byte (with canaries just
 * before and after the destination); returns the bytes read. */
static uint64_t read_sizes(struct ferry_bdev *b)
{
	static const uint32_t blocks[] = {1, 2, 3, 16, 32, 64, 100, 256};
	uint64_t total = 0;
	for (unsigned k = 0; k < 2; k++) {
		for (unsigned i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
			uint32_t n = blocks[i];
			uint32_t lba = (uint32_t)((i * 97 + k * 13) % (DDP_BLOCKS - n));
			size_t len = (size_t)n * DDP_BS;
			memset(G_buf, 0xa5, sizeof(G_buf));
			int rc = run_sys(b, FERRY_BDEV_IO_READ, lba, G_buf + DDP_BS, len);
			cr_assert_eq(rc, 0, "read %u blocks at %u: %d (%s)", n, lba, rc,
				     ferry_last_error());
			cr_assert_eq(memcmp(G_buf + DDP_BS, G_ref + (size_t)lba * DDP_BS, len), 0,
				     "read %u blocks at %u: data differ", n, lba);
			for (size_t j = 0; j < DDP_BS; j++) {
				cr_assert_eq(G_buf[j], 0xa5, "byte before the destination written");
				cr_assert_eq(G_buf[DDP_BS + len + j], 0xa5,
					     "byte after the destination written");
			}
			total += len;
		}
	}
	return total;
}

struct env {
	struct ferry_device *dev;
	struct ferry_bdev *b;
	struct ferry_mock_host *host; /* env_host_read()'s, closed by env_down() */
	struct ferry_bdev_nvmf_stats before;
};

static void env_up(struct env *e, const char *args, uint32_t flags)
{
	tgt_up(&T, &DDP_TGT);
	e->host = NULL;
	e->dev = tm_open(args);
	e->b = bdev_up(e->dev, "nvmf_ddp", flags, 0, 0);
	ns_fill(e->b);
	e->before = stats_of(e->b);
}

static void env_down(struct env *e)
{
	if (getenv("DDP_DEBUG")) {
		struct ferry_bdev_nvmf_stats s = stats_of(e->b);
		fprintf(stderr,
			"ios %llu host_ios %llu placed %llu host %llu fb %llu nic_crc %llu sw_crc %llu "
			"staged %llu untr %llu resync %llu/%llu nicerr %llu setupfail %llu copied %llu "
			"retries %llu\n",
			(unsigned long long)s.ddp_ios, (unsigned long long)s.ddp_host_ios,
			(unsigned long long)s.ddp_placed_bytes,
			(unsigned long long)s.ddp_host_bytes,
			(unsigned long long)s.ddp_fallback_bytes,
			(unsigned long long)s.nic_crc_bytes, (unsigned long long)s.sw_crc_bytes,
			(unsigned long long)s.staged_bytes,
			(unsigned long long)s.ddp_untranslatable, (unsigned long long)s.ddp_resyncs,
			(unsigned long long)s.ddp_resync_fail, (unsigned long long)s.ddp_nic_errors,
			(unsigned long long)s.ddp_setup_fail, (unsigned long long)s.rx_copied_bytes,
			(unsigned long long)s.retries);
	}
	cr_assert_eq(ferry_bdev_destroy(e->b), 0);
	if (e->host)
		ferry_mock_host_close(e->host);
	ferry_device_close(e->dev);
	tgt_down(&T);
}

/* env_up() and read_sizes(): the bytes read, the counters after them in @p s. */
static uint64_t env_read(struct env *e, const char *args, uint32_t flags,
			 struct ferry_bdev_nvmf_stats *s)
{
	env_up(e, args, flags);
	uint64_t bytes = read_sizes(e->b);
	*s = stats_of(e->b);
	return bytes;
}

/* Counters since env_up()'s fill. */
#define D(e, s, f) ((s).f - (e)->before.f)

/* A test whose body (the block after the macro) checks the counters after @p up, which
 * brings up the env e_ and returns the bytes it read: the body sees e (const struct env *),
 * s (the counters after @p up) and bytes; env_down() follows it. */
#define DDP_TEST_(name, up)                                                                        \
	static void name##_check(const struct env *e, struct ferry_bdev_nvmf_stats s,              \
				 __attribute__((unused)) uint64_t bytes);                          \
	Test(nvmf_ddp, name)                                                                       \
	{                                                                                          \
		struct env e_;                                                                     \
		struct ferry_bdev_nvmf_stats s_;                                                   \
		uint64_t bytes_ = (up);                                                            \
		name##_check(&e_, s_, bytes_);                                                     \
		env_down(&e_);                                                                     \
	}                                                                                          \
	static void name##_check(const struct env *e, struct ferry_bdev_nvmf_stats s,              \
				 __attribute__((unused)) uint64_t bytes)

/* The counters after env_read(@p args, @p flags). */
#define DDP_READ_TEST(name, args, flags) DDP_TEST_(name, env_read(&e_, args, flags, &s_))

DDP_READ_TEST(all_placed_and_verified, "", 0)
{
	cr_assert_eq(s.ddp_queues, 2, "both I/O queues offloaded (got %llu)",
		     (unsigned long long)s.ddp_queues);
	cr_assert_eq(s.ddp_queue_refused, 0);
	cr_assert_eq(D(e, s, bytes_read), bytes);
	cr_assert_eq(D(e, s, ddp_placed_bytes), bytes, "placed %llu of %llu",
		     (unsigned long long)D(e, s, ddp_placed_bytes), (unsigned long long)bytes);
	cr_assert_eq(D(e, s, ddp_fallback_bytes), 0);
	cr_assert_eq(D(e, s, nic_crc_bytes), bytes);
	cr_assert_eq(s.sw_crc_bytes, 0, "software CRC of %llu bytes",
		     (unsigned long long)s.sw_crc_bytes);
	cr_assert_eq(D(e, s, rx_copied_bytes), 0, "copied %llu bytes",
		     (unsigned long long)D(e, s, rx_copied_bytes));
	cr_assert_eq(D(e, s, ddp_ios), D(e, s, commands), "every read command mapped");
	cr_assert_eq(D(e, s, ddp_setup_fail), 0);
	cr_assert_eq(D(e, s, ddp_host_bytes), 0);
	cr_assert_eq(D(e, s, io_errors), 0);
	cr_assert_eq(D(e, s, ddp_nic_errors), 0);
}

DDP_READ_TEST(every_packet_missed, "place_miss_ppm=1000000,crc_miss_ppm=1000000", 0)
{
	cr_assert_eq(D(e, s, ddp_placed_bytes), 0);
	cr_assert_eq(D(e, s, ddp_fallback_bytes), bytes);
	cr_assert_eq(D(e, s, nic_crc_bytes), 0);
	cr_assert_eq(D(e, s, sw_crc_bytes), bytes);
	cr_assert_eq(D(e, s, ddp_ios), D(e, s, commands));
	cr_assert_eq(D(e, s, io_errors), 0);
}

DDP_READ_TEST(mixed_misses, "place_miss_ppm=300000,crc_miss_ppm=300000,nic_pkt=4096", 0)
{
	cr_assert_eq(D(e, s, ddp_placed_bytes) + D(e, s, ddp_fallback_bytes), bytes);
	cr_assert_gt(D(e, s, ddp_placed_bytes), 0);
	cr_assert_gt(D(e, s, ddp_fallback_bytes), 0);
	cr_assert_eq(D(e, s, nic_crc_bytes) + D(e, s, sw_crc_bytes), bytes);
	cr_assert_gt(D(e, s, nic_crc_bytes), 0);
	cr_assert_gt(D(e, s, sw_crc_bytes), 0);
	cr_assert_eq(D(e, s, io_errors), 0);
	cr_assert_eq(D(e, s, digest_errors), 0);
}

DDP_READ_TEST(setup_refused, "setup_fail_ppm=1000000", 0)
{
	cr_assert_eq(s.ddp_queues, 2);
	cr_assert_eq(D(e, s, ddp_ios), 0);
	cr_assert_eq(D(e, s, ddp_setup_fail), D(e, s, commands));
	cr_assert_eq(D(e, s, ddp_placed_bytes), 0);
	cr_assert_eq(D(e, s, ddp_fallback_bytes), 0);
	/* the NIC still verifies digests of commands it does not place */
	cr_assert_eq(D(e, s, nic_crc_bytes) + D(e, s, sw_crc_bytes), bytes);
	cr_assert_eq(D(e, s, io_errors), 0);
}

DDP_READ_TEST(queue_refused, "queue_fail_ppm=1000000", 0)
{
	cr_assert_eq(s.ddp_queues, 0);
	cr_assert_eq(s.ddp_queue_refused, 2);
	cr_assert_eq(D(e, s, ddp_ios), 0);
	cr_assert_eq(D(e, s, ddp_setup_fail), 0);
	cr_assert_eq(D(e, s, sw_crc_bytes), bytes);
	cr_assert_eq(D(e, s, nic_crc_bytes), 0);
	cr_assert_eq(D(e, s, io_errors), 0);
}

DDP_READ_TEST(no_ddp_flag, "", FERRY_BDEV_NVMF_F_NO_DDP)
{
	cr_assert_eq(s.ddp_queues + s.ddp_queue_refused, 0);
	cr_assert_eq(D(e, s, ddp_ios), 0);
	cr_assert_eq(D(e, s, sw_crc_bytes), bytes);
}

Test(nvmf_ddp, resync)
{
	struct env e;
	env_up(&e, "resync_ppm=100000,resync_wrong_ppm=500000,nic_pkt=4096", 0);
	uint64_t bytes = read_sizes(e.b);
	bytes += read_sizes(e.b);
	struct ferry_bdev_nvmf_stats s = stats_of(e.b);
	cr_assert_gt(s.ddp_resyncs, 0, "no resync answered");
	cr_assert_gt(s.ddp_resync_fail, 0, "no wrong offset answered 'not found'");
	cr_assert_eq(D(&e, s, ddp_placed_bytes) + D(&e, s, ddp_fallback_bytes), bytes);
	cr_assert_eq(D(&e, s, nic_crc_bytes) + D(&e, s, sw_crc_bytes), bytes);
	cr_assert_gt(D(&e, s, ddp_placed_bytes), 0, "placement resumed after the resyncs");
	cr_assert_eq(D(&e, s, io_errors), 0);
	cr_assert_eq(D(&e, s, ddp_nic_errors), 0);
	env_down(&e);
}

/* A NIC that claims PLACED | CRC_OK for payload it did not write: with the debug check every
 * such read is caught (its digest recomputed in software does not match), redone once
 * without offload, and fails if the NIC lies again; a read never returns wrong data with
 * status 0. */
Test(nvmf_ddp, lie_caught_by_verify)
{
	struct env e;
	env_up(&e, "lie_ppm=30000", FERRY_BDEV_NVMF_F_DDP_VERIFY);
	static const uint32_t blocks[] = {1, 4, 16, 64};
	unsigned ok = 0, failed = 0;
	for (unsigned k = 0; k < 40; k++) {
		uint32_t n = blocks[k % 4], lba = (k * 37) % (DDP_BLOCKS - n);
		size_t len = (size_t)n * DDP_BS;
		memset(G_buf, 0xa5, len);
		int rc = run_sys(e.b, FERRY_BDEV_IO_READ, lba, G_buf, len);
		if (rc) {
			cr_assert_eq(rc, -EIO, "read failed with %d", rc);
			failed++;
			continue;
		}
		cr_assert_eq(memcmp(G_buf, G_ref + (size_t)lba * DDP_BS, len), 0,
			     "a read with status 0 has wrong data (%u blocks at %u)", n, lba);
		ok++;
	}
	struct ferry_bdev_nvmf_stats s = stats_of(e.b);
	cr_assert_gt(D(&e, s, ddp_nic_errors), 0, "no lie caught");
	cr_assert_gt(ok, 0);
	cr_assert_eq(D(&e, s, io_errors), failed);
	env_down(&e);
}

/* Without the debug check the same NIC's lies go through (what the check is for). */
Test(nvmf_ddp, lie_unseen_without_verify)
{
	struct env e;
	env_up(&e, "lie_ppm=1000000", 0);
	memset(G_buf, 0xa5, 16 * DDP_BS);
	cr_assert_eq(run_sys(e.b, FERRY_BDEV_IO_READ, 0, G_buf, 16 * DDP_BS), 0);
	cr_assert_neq(memcmp(G_buf, G_ref, 16 * DDP_BS), 0, "the lie was not one");
	struct ferry_bdev_nvmf_stats s = stats_of(e.b);
	cr_assert_eq(D(&e, s, ddp_nic_errors), 0);
	env_down(&e);
}

/* Host memory: IOVA pages of the nvme function 16.. -> host pages 64..; the nic function sees
 * the same host pages at IOVAs 512.. (and the canary pages around them). */
#define H_PAGES 256u /* 1 MiB destination */
#define H_HOST 64u

static void host_map(struct ferry_mock_host *h, int hole)
{
	tm_map(h, "nvme", 16, H_HOST, H_PAGES, TM_RW);
	/* canaries H_HOST - 1 and H_HOST + H_PAGES are writable for the nic function too */
	if (hole < 0) {
		tm_map(h, "nic", 511, H_HOST - 1, H_PAGES + 2, TM_RW);
	} else {
		tm_map(h, "nic", 511, H_HOST - 1, (uint64_t)hole + 1, TM_RW);
		tm_map(h, "nic", 512 + (uint64_t)hole + 1, H_HOST + (uint64_t)hole + 1,
		       H_PAGES - (uint64_t)hole, TM_RW);
	}
}

static void host_reads(struct env *e, struct ferry_mock_host *h, uint64_t *bytes)
{
	struct ferry_memdomain *dom = tm_domain(e->dev, "nvme");
	uint8_t *host = ferry_mock_host_ptr(h, (H_HOST - 1) * TM_PAGE, (H_PAGES + 2) * TM_PAGE);
	cr_assert_not_null(host);
	static const uint32_t blocks[] = {1, 7, 32, 256};
	for (unsigned i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		uint32_t n = blocks[i], lba = 5 + i * 31;
		size_t len = (size_t)n * DDP_BS;
		memset(host, 0x5a, (H_PAGES + 2) * TM_PAGE);
		/* two segments when possible */
		size_t first = n > 1 ? (size_t)(n / 2) * DDP_BS : len;
		struct iovec iov[2] = {{TM_IOVA(16), first},
				       {TM_IOVA(16 + first / TM_PAGE), len - first}};
		struct ferry_mem m = {.domain = dom, .iov = iov, .iovcnt = len > first ? 2 : 1};
		int rc = run(e->b, FERRY_BDEV_IO_READ, lba, n, &m);
		cr_assert_eq(rc, 0, "host read %u blocks: %d (%s)", n, rc, ferry_last_error());
		cr_assert_eq(memcmp(host + TM_PAGE, G_ref + (size_t)lba * DDP_BS, len), 0,
			     "host read %u blocks: data differ", n);
		for (size_t j = 0; j < TM_PAGE; j++)
			cr_assert_eq(host[j], 0x5a, "canary before the destination written");
		for (size_t j = TM_PAGE + len; j < (H_PAGES + 2) * TM_PAGE; j++)
			cr_assert_eq(host[j], 0x5a, "byte after the destination written (%zu)",
				     j - TM_PAGE - len);
		*bytes += len;
	}
}

/* env_up() on a device with host memory ("host_mem=4M,functions=nvme:nic" and @p args), the
 * pages mapped (host_map(@p hole)) and host_reads() done: the bytes read, the counters after
 * them in @p s. */
static uint64_t env_host_read(struct env *e, const char *args, int hole,
			      struct ferry_bdev_nvmf_stats *s)
{
	char a[256];
	snprintf(a, sizeof(a), "host_mem=4M,functions=nvme:nic%s%s", *args ? "," : "", args);
	env_up(e, a, 0);
	e->host = tm_host(e->dev);
	host_map(e->host, hole);
	uint64_t bytes = 0;
	host_reads(e, e->host, &bytes);
	*s = stats_of(e->b);
	return bytes;
}

/* The counters after env_host_read(@p args, @p hole). */
#define DDP_HOST_TEST(name, args, hole) DDP_TEST_(name, env_host_read(&e_, args, hole, &s_))

DDP_HOST_TEST(host_memory_placement, "", -1)
{
	cr_assert_eq(D(e, s, ddp_host_bytes), bytes, "host-placed %llu of %llu",
		     (unsigned long long)D(e, s, ddp_host_bytes), (unsigned long long)bytes);
	cr_assert_eq(D(e, s, ddp_placed_bytes), bytes);
	cr_assert_eq(D(e, s, ddp_host_ios), D(e, s, ddp_ios));
	cr_assert_eq(D(e, s, staged_bytes), 0, "%llu bytes through staging",
		     (unsigned long long)D(e, s, staged_bytes));
	cr_assert_eq(D(e, s, sw_crc_bytes), 0);
	cr_assert_eq(D(e, s, ddp_untranslatable), 0);
}

/* Misses of host-placed reads: exactly the bytes the NIC did not place go through staging. */
DDP_HOST_TEST(host_memory_misses_pushed, "place_miss_ppm=300000", -1)
{
	cr_assert_gt(D(e, s, ddp_host_bytes), 0);
	cr_assert_gt(D(e, s, ddp_fallback_bytes), 0);
	cr_assert_eq(D(e, s, ddp_host_bytes) + D(e, s, ddp_fallback_bytes), bytes);
	cr_assert_eq(D(e, s, staged_bytes), D(e, s, ddp_fallback_bytes));
	cr_assert_eq(D(e, s, io_errors), 0);
}

/* So many small misses that their list overflows: the read is redone without offload
 * (staged whole), the data still right. */
DDP_HOST_TEST(host_memory_with_misses, "place_miss_ppm=300000,nic_pkt=4096", -1)
{
	cr_assert_gt(D(e, s, ddp_host_bytes), 0);
	/* every byte either placed in host memory or pushed from staging (a redo pushes all) */
	cr_assert_geq(D(e, s, ddp_host_bytes) + D(e, s, staged_bytes), bytes);
	cr_assert_eq(D(e, s, io_errors), 0);
}

DDP_HOST_TEST(host_page_the_nic_cannot_see, "", 3)
{
	/* the destination's 4th page is not mapped for the nic function */
	/* reads of 1 block do not reach the hole: placed; the others staged */
	cr_assert_gt(D(e, s, ddp_untranslatable), 0);
	cr_assert_eq(D(e, s, ddp_host_bytes) + D(e, s, staged_bytes), bytes);
	cr_assert_gt(D(e, s, staged_bytes), 0);
	cr_assert_eq(D(e, s, io_errors), 0);
}

#define RQ 16u
#define RQ_BLOCKS 16u

static struct rreq {
	struct ferry_bdev_io io;
	struct iovec iov;
	uint8_t buf[RQ_BLOCKS * DDP_BS];
	uint32_t lba;
	int busy, calls, bad;
} R[RQ];

static void rq_cb(struct ferry_bdev_io *io, void *arg)
{
	struct rreq *r = arg;
	r->calls++;
	r->busy = 0;
	if (io->status || memcmp(r->buf, G_ref + (size_t)r->lba * DDP_BS, sizeof(r->buf)))
		r->bad++;
}

static void rq_start(struct ferry_bdev *b, struct rreq *r, uint64_t *seed)
{
	memset(&r->io, 0, sizeof(r->io));
	r->lba = (uint32_t)(tm_rand(seed) % (DDP_BLOCKS - RQ_BLOCKS));
	r->iov.iov_base = r->buf;
	r->iov.iov_len = sizeof(r->buf);
	r->io.type = FERRY_BDEV_IO_READ;
	r->io.offset_blocks = r->lba;
	r->io.num_blocks = RQ_BLOCKS;
	r->io.mem.iov = &r->iov;
	r->io.mem.iovcnt = 1;
	r->io.cb = rq_cb;
	r->io.cb_arg = r;
	r->busy = 1;
	r->calls = 0;
	cr_assert_eq(ferry_bdev_submit(b, &r->io), 0, "%s", ferry_last_error());
}

/* Reads at QD 16 with their mappings (and teardowns) live when the connections die: each
 * completes exactly once, with status 0 and the right data after the reconnect. */
Test(nvmf_ddp, connection_loss_with_mappings_live)
{
	tgt_up(&T, &DDP_TGT);
	struct ferry_device *dev = tm_open("place_miss_ppm=100000,nic_pkt=4096");
	struct ferry_bdev *b = bdev_up(dev, "nvmf_ddp_loss", 0, 8, 20);
	ns_fill(b);
	uint64_t seed = 9, completed = 0;
	for (int round = 0; round < 3; round++) {
		for (unsigned i = 0; i < RQ; i++)
			rq_start(b, &R[i], &seed);
		/* kill at once (commands unsent or mapped), after some completed (others
		 * mid-transfer or waiting for their teardown), after about half completed */
		uint64_t until = tm_now_ns() + 2000000000ull;
		for (unsigned k = 0; round && tm_now_ns() < until; k++) {
			unsigned left = 0;
			for (unsigned i = 0; i < RQ; i++)
				left += R[i].busy;
			if (left <= (round == 1 ? RQ - 1 : RQ / 2))
				break;
			ferry_bdev_poll(b, 64);
		}
		tgt_restart(&T); /* connections closed abruptly, mappings live */
		uint64_t end = tm_now_ns() + 20000000000ull;
		for (;;) {
			unsigned busy = 0;
			for (unsigned i = 0; i < RQ; i++)
				busy += R[i].busy;
			if (!busy || tm_now_ns() > end)
				break;
			ferry_bdev_poll(b, 64);
		}
		for (unsigned i = 0; i < RQ; i++) {
			cr_assert_eq(R[i].busy, 0, "read %u never completed", i);
			cr_assert_eq(R[i].calls, 1, "read %u completed %d times", i, R[i].calls);
			cr_assert_eq(R[i].bad, 0, "read %u failed or has wrong data", i);
			completed++;
		}
	}
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	if (getenv("DDP_DEBUG"))
		fprintf(stderr,
			"losses %llu reconnects %llu retries %llu ddp_ios %llu queues %llu\n",
			(unsigned long long)s.connection_losses, (unsigned long long)s.reconnects,
			(unsigned long long)s.retries, (unsigned long long)s.ddp_ios,
			(unsigned long long)s.ddp_queues);
	cr_assert_geq(s.connection_losses, 1);
	cr_assert_geq(s.reconnects, 1);
	cr_assert_gt(s.retries, 0, "no read was in flight at a kill");
	cr_assert_gt(s.ddp_queues, 2, "queues offloaded again after the reconnect");
	cr_assert_eq(completed, 3 * RQ);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	tgt_down(&T);
}

/* Host-placed PDUs the NIC did not verify: their digests are checked in software after the
 * transfer (pulled back from host memory), the data right, nothing redone. */
DDP_HOST_TEST(host_memory_digest_checked_after_placement,
	      "crc_miss_ppm=500000,place_miss_ppm=100000", -1)
{
	cr_assert_gt(D(e, s, ddp_host_bytes), 0);
	cr_assert_gt(D(e, s, sw_crc_bytes), 0, "no digest checked in software");
	cr_assert_eq(D(e, s, nic_crc_bytes) + D(e, s, sw_crc_bytes), bytes);
	cr_assert_eq(D(e, s, ddp_host_bytes) + D(e, s, ddp_fallback_bytes), bytes,
		     "a read was redone");
	cr_assert_eq(D(e, s, io_errors), 0);
	cr_assert_eq(D(e, s, digest_errors), 0);
}

/* The nvmf bdev @p name on @p nic against the fake target @p t, data digests on. */
static struct ferry_bdev *fake_bdev(struct ferry_device *nic, const struct fake_target *t,
				    const char *name)
{
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = name;
	o.nic = nic;
	o.addr = t->addr;
	o.subnqn = "nqn.2026-01.io.ferry:fake";
	o.ddgst = 1;
	struct ferry_bdev *b = NULL;
	cr_assert_eq(ferry_bdev_nvmf_create(&o, &b), 0, "%s", ferry_last_error());
	return b;
}

/* A controller that corrupts a read's data digest (fake target): the error is caught
 * whichever side checks it: the NIC (no CRC_OK on the digest: software recomputes it over
 * the placed bytes) and, for host-placed data, software after pulling the PDUs back. */
Test(nvmf_ddp, corrupted_digest_caught)
{
	struct fake_target t;
	ft_defaults(&t);
	t.c2h_chunk = 8192;
	t.fault = FAULT_BAD_DDGST;
	t.fault_n = 1;
	t.fault_once = 0;
	cr_assert_eq(ft_start(&t), 0);
	fill(t.storage, (size_t)t.blocks * t.block_size, 5);
	struct ferry_device *dev = tm_open("host_mem=4M,functions=nvme:nic");
	struct ferry_mock_host *h = tm_host(dev);
	host_map(h, -1);
	struct ferry_bdev *b = fake_bdev(dev, &t, "nvmf_ddp_bad");
	struct ferry_bdev_nvmf_stats s0 = stats_of(b);
	/* the 1st I/O command: local memory, mapped */
	memset(G_buf, 0, 32768);
	struct iovec liov = {G_buf, 32768};
	struct ferry_mem lm = {.iov = &liov, .iovcnt = 1};
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 0, 64, &lm), -EIO);
	struct ferry_bdev_nvmf_stats s1 = stats_of(b);
	cr_assert_eq(s1.digest_errors - s0.digest_errors, 1);
	cr_assert_eq(s1.ddp_ios - s0.ddp_ios, 1);
	/* the 2nd: host memory placed by the NIC, digest checked after the pull back */
	t.fault_n = 2;
	struct iovec iov = {TM_IOVA(16), 32768};
	struct ferry_mem m = {.domain = tm_domain(dev, "nvme"), .iov = &iov, .iovcnt = 1};
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 0, 64, &m), -EIO);
	struct ferry_bdev_nvmf_stats s2 = stats_of(b);
	cr_assert_eq(s2.digest_errors - s1.digest_errors, 1);
	cr_assert_eq(s2.ddp_host_ios - s1.ddp_host_ios, 1);
	/* later reads are fine */
	t.fault = FAULT_NONE;
	cr_assert_eq(run(b, FERRY_BDEV_IO_READ, 64, 64, &m), 0);
	uint8_t *host = ferry_mock_host_ptr(h, H_HOST * TM_PAGE, 32768);
	cr_assert_eq(memcmp(host, t.storage + 64 * 512, 32768), 0);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_mock_host_close(h);
	ferry_device_close(dev);
	ft_stop(&t);
}

/* The NIC maps at most 256 KiB and 2 segments: a 1 MiB read goes out as 4 mapped commands;
 * a read in 4 segments is not mapped (software), both with the right data. */
Test(nvmf_ddp, nic_limits_honoured)
{
	struct env e;
	env_up(&e, "ddp_max_io=262144,ddp_max_sges=2", 0);
	memset(G_buf, 0, DDP_MAX);
	cr_assert_eq(run_sys(e.b, FERRY_BDEV_IO_READ, 0, G_buf, DDP_MAX), 0);
	cr_assert_eq(memcmp(G_buf, G_ref, DDP_MAX), 0);
	struct ferry_bdev_nvmf_stats s = stats_of(e.b);
	cr_assert_eq(D(&e, s, split_ios), 1);
	cr_assert_eq(D(&e, s, ddp_ios), 4);
	cr_assert_eq(D(&e, s, ddp_placed_bytes), DDP_MAX);
	/* 4 segments of 16 KiB each */
	struct iovec iov[4];
	memset(G_buf, 0, 65536);
	for (int i = 0; i < 4; i++) {
		iov[i].iov_base = G_buf + (size_t)i * 16384 + (size_t)i * DDP_BS;
		iov[i].iov_len = 16384;
	}
	struct ferry_mem m = {.iov = iov, .iovcnt = 4};
	cr_assert_eq(run(e.b, FERRY_BDEV_IO_READ, 32, 16, &m), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(memcmp(iov[i].iov_base, G_ref + (32 + (size_t)i * 4) * DDP_BS, 16384),
			     0);
	struct ferry_bdev_nvmf_stats s2 = stats_of(e.b);
	cr_assert_eq(s2.ddp_ios, s.ddp_ios, "a 4-segment read was mapped on a 2-SGE NIC");
	cr_assert_eq(s2.ddp_placed_bytes, s.ddp_placed_bytes);
	env_down(&e);
}

/* A read carrying an accel sequence: the NIC places into the staging buffer the sequence's
 * copy reads. */
Test(nvmf_ddp, sequence_read_placed_into_staging)
{
	struct env e;
	env_up(&e, "", 0);
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct iovec iov = {G_buf, 32 * DDP_BS};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	memset(G_buf, 0, 32 * DDP_BS);
	cr_assert_eq(run_one(e.b, ch, FERRY_BDEV_IO_READ, 40, 32, &m), 0, "%s", ferry_last_error());
	cr_assert_eq(memcmp(G_buf, G_ref + 40 * DDP_BS, 32 * DDP_BS), 0);
	struct ferry_bdev_nvmf_stats s = stats_of(e.b);
	cr_assert_eq(D(&e, s, seq_ios), 1);
	cr_assert_eq(D(&e, s, ddp_ios), 1);
	cr_assert_eq(D(&e, s, ddp_placed_bytes), 32 * DDP_BS);
	cr_assert_eq(D(&e, s, rx_copied_bytes), 0);
	ferry_accel_chan_destroy(ch);
	env_down(&e);
}

/* A controller that ends reads with the C2H SUCCESS flag (no CapsuleResp): the read still
 * completes once, after its mapping's teardown. */
Test(nvmf_ddp, c2h_success_completes_after_teardown)
{
	struct fake_target t;
	ft_defaults(&t);
	t.c2h_chunk = 4096;
	t.c2h_success = 1;
	cr_assert_eq(ft_start(&t), 0);
	fill(t.storage, (size_t)t.blocks * t.block_size, 9);
	struct ferry_device *dev = tm_open("");
	struct ferry_bdev *b = fake_bdev(dev, &t, "nvmf_ddp_succ");
	for (uint32_t k = 0; k < 8; k++) {
		memset(G_buf, 0, 65536);
		struct iovec iov = {G_buf, 65536};
		struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
		cr_assert_eq(run(b, FERRY_BDEV_IO_READ, k * 128, 128, &m), 0, "%s",
			     ferry_last_error());
		cr_assert_eq(memcmp(G_buf, t.storage + (size_t)k * 65536, 65536), 0);
	}
	struct ferry_bdev_nvmf_stats s = stats_of(b);
	cr_assert_eq(s.c2h_success, 8);
	cr_assert_eq(s.ddp_ios, 8);
	cr_assert_eq(s.ddp_placed_bytes, 8 * 65536);
	cr_assert_eq(ferry_bdev_destroy(b), 0);
	ferry_device_close(dev);
	ft_stop(&t);
}
