/*
 * The nvmf bdev's receive-offload path against a hostile NVMe/TCP controller (fake_target.h
 * with a scripted answer to one read or write): C2HData past the transfer and the mapping,
 * offsets going backwards or overlapping, DATAL 0, PDUs cut at odd offsets into tiny
 * packets, data for a cid never sent / already answered / naming a write, a CapsuleResp
 * before the data, C2H SUCCESS followed by a CapsuleResp, wrong data digests (the NIC
 * verifying or not), garbage where a header belongs, a reset mid-PDU, a huge PLEN. Reads
 * go into local memory and into host memory placed by the mock offload NIC through its nic
 * function, both between canary pages, with and without digests. Whatever the controller
 * does: no byte outside the destination, no read completed with status 0 and wrong data,
 * each I/O completed exactly once within a bound (retried after a failed connection).
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/bdev.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/log.h>
#include <ferry/mock.h>
#include "fake_target.h"
#include "nvmf_test_util.h"
#include "test_mock_util.h"

#define HS_BS 512u
#define HS_LEN 16384u /* one read: 32 blocks */
#define HS_LBA 64u
#define HS_PAGES 4u  /* destination pages (16 KiB) */
#define HS_HOST 64u  /* first destination host page */
#define HS_CANARY 4u /* canary pages each side */
#define HS_FILL 0x5a

enum attack {
	A_NONE,
	A_PAST_TRANSFER,    /* one C2HData [0, len + 512) */
	A_PAST_MAPPING,     /* a C2HData far beyond the transfer and the mapping */
	A_BACKWARDS,        /* [0, 8K) then [4K, 8K) of garbage, then [8K, len) */
	A_OVERLAP,          /* [0, 8K) then [6K, len): overlapping */
	A_DATAL0,           /* a C2HData with DATAL 0 first */
	A_ODD_SPLIT,        /* valid PDUs written in pieces of odd sizes */
	A_UNKNOWN_CID,      /* C2HData of garbage for a cid never sent, then the answer */
	A_LATE_DATA,        /* the whole answer, then C2HData of garbage for the same cid */
	A_RESP_FIRST,       /* half the data, a CapsuleResp, then the other half */
	A_SUCCESS_AND_RESP, /* data ending with SUCCESS, then a CapsuleResp too */
	A_BAD_DDGST,        /* the last PDU's data digest flipped */
	A_GARBAGE_HDR,      /* half the data, then 200 bytes of garbage */
	A_RESET_MID_PDU,    /* a header and half its data, then the connection closed */
	A_HUGE_PLEN,        /* a C2HData header saying PLEN 0xfffffff0 */
	A_SKIP_SUCCESS,     /* only [len / 2, len) with LAST | SUCCESS */
	A_BAD_HDGST,        /* a C2HData whose header digest is wrong */
	A_C2H_FOR_WRITE,    /* (writes) a C2HData naming the write */
};

static struct {
	atomic_int attack; /* enum attack */
	atomic_int armed;  /* the next so many reads (writes for A_C2H_FOR_WRITE) attacked */
	atomic_int hits;
} H;

/* One C2HData whose header says datao/datal while dlen bytes of data go out. */
static int h_c2h(struct fake_conn *c, uint16_t cid, uint32_t datao, uint32_t datal,
		 const uint8_t *data, uint32_t dlen, uint8_t flags, int bad)
{
	struct ferry_nvme_tcp_data d;
	memset(&d, 0, sizeof(d));
	d.ch.pdu_type = FERRY_NVME_TCP_C2H_DATA;
	d.ch.flags = flags;
	d.cccid = cid;
	d.datao = datao;
	d.datal = datal;
	return ft_send_pdu(c, &d, 24, data, dlen, bad);
}

/* The read's bytes [o, o + l) from the namespace, bytes past it 0xee. */
static uint8_t *h_data(struct fake_conn *c, uint64_t off, uint32_t o, uint32_t l)
{
	uint8_t *p = malloc(l);
	uint64_t size = (uint64_t)c->t->blocks * c->t->block_size;
	for (uint32_t i = 0; i < l; i++)
		p[i] = off + o + i < size ? c->t->storage[off + o + i] : 0xee;
	return p;
}

static int h_data_pdu(struct fake_conn *c, uint16_t cid, uint64_t off, uint32_t o, uint32_t l,
		      uint8_t flags)
{
	uint8_t *p = h_data(c, off, o, l);
	int rc = h_c2h(c, cid, o, l, p, l, flags, 0);
	free(p);
	return rc;
}

static int h_garbage_pdu(struct fake_conn *c, uint16_t cid, uint32_t o, uint32_t l, uint8_t flags)
{
	uint8_t *p = malloc(l);
	memset(p, 0xc3, l);
	int rc = h_c2h(c, cid, o, l, p, l, flags, 0);
	free(p);
	return rc;
}

/* Build a valid C2HData PDU (header, digests) into a buffer; returns its length. */
static uint32_t h_build(struct fake_conn *c, uint8_t *out, uint16_t cid, const uint8_t *data,
			uint32_t o, uint32_t l, uint8_t flags)
{
	struct ferry_nvme_tcp_data d;
	memset(&d, 0, sizeof(d));
	d.ch.pdu_type = FERRY_NVME_TCP_C2H_DATA;
	d.ch.flags = flags | (c->hdgst ? FERRY_NVME_TCP_F_HDGST : 0) |
		     (c->ddgst ? FERRY_NVME_TCP_F_DDGST : 0);
	d.ch.hlen = 24;
	d.ch.pdo = (uint8_t)(24 + (c->hdgst ? 4 : 0));
	d.ch.plen = d.ch.pdo + l + (c->ddgst ? 4 : 0);
	d.cccid = cid;
	d.datao = o;
	d.datal = l;
	uint32_t n = 0;
	memcpy(out, &d, 24);
	n = 24;
	if (c->hdgst) {
		uint32_t crc = ferry_crc32c(0, out, 24);
		memcpy(out + n, &crc, 4);
		n += 4;
	}
	memcpy(out + n, data, l);
	n += l;
	if (c->ddgst) {
		uint32_t crc = ferry_crc32c(0, data, l);
		memcpy(out + n, &crc, 4);
		n += 4;
	}
	return n;
}

static int h_read(struct fake_conn *c, struct ferry_nvme_sqe *e, enum attack a)
{
	uint64_t slba = e->cdw10 | (uint64_t)e->cdw11 << 32;
	uint32_t len = ((e->cdw12 & 0xffff) + 1) * c->t->block_size;
	uint64_t off = slba * c->t->block_size;
	uint16_t cid = e->cid;
	const uint8_t last = FERRY_NVME_TCP_F_LAST_PDU;
	uint32_t half = len / 2;
	switch (a) {
	case A_PAST_TRANSFER:
		if (h_data_pdu(c, cid, off, 0, len + 512, last))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	case A_PAST_MAPPING:
		if (h_data_pdu(c, cid, off, 0, half, 0) || h_garbage_pdu(c, cid, 1u << 20, 4096, 0))
			return -1;
		if (h_data_pdu(c, cid, off, half, len - half, last))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	case A_BACKWARDS:
		if (h_data_pdu(c, cid, off, 0, 8192, 0) || h_garbage_pdu(c, cid, 4096, 4096, 0) ||
		    h_data_pdu(c, cid, off, 8192, len - 8192, last))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	case A_OVERLAP:
		if (h_data_pdu(c, cid, off, 0, 8192, 0) ||
		    h_garbage_pdu(c, cid, 6144, len - 6144, last))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	case A_DATAL0:
		if (h_c2h(c, cid, 0, 0, NULL, 0, 0, 0) || h_data_pdu(c, cid, off, 0, len, last))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	case A_ODD_SPLIT: {
		/* 3 PDUs in one stream, with the CapsuleResp, written in pieces of 1..13 bytes */
		uint8_t *src = h_data(c, off, 0, len);
		uint8_t *buf = malloc(len + 3 * 40 + 40);
		uint32_t n = 0, a1 = 5120, a2 = 3072;
		n += h_build(c, buf + n, cid, src, 0, a1, 0);
		n += h_build(c, buf + n, cid, src + a1, a1, a2, 0);
		n += h_build(c, buf + n, cid, src + a1 + a2, a1 + a2, len - a1 - a2, last);
		free(src);
		static const uint32_t cuts[] = {1, 7, 13, 3, 11, 2, 5, 9};
		int rc = 0;
		for (uint32_t o = 0, k = 0; o < n && !rc; k++) {
			uint32_t l = cuts[k % 8] * (k % 5 == 4 ? 97 : 1);
			if (l > n - o)
				l = n - o;
			rc = ft_write(c->fd, buf + o, l);
			o += l;
			if (k % 16 == 0)
				usleep(200); /* separate segments now and then */
		}
		free(buf);
		return rc ? -1 : ft_resp(c, cid, 0, 0, 0);
	}
	case A_UNKNOWN_CID:
		if (h_garbage_pdu(c, (uint16_t)(cid ^ 0x5a5a), 0, 4096, last) ||
		    h_data_pdu(c, cid, off, 0, len, last))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	case A_LATE_DATA:
		if (h_data_pdu(c, cid, off, 0, len, last) || ft_resp(c, cid, 0, 0, 0))
			return -1;
		return h_garbage_pdu(c, cid, 0, 4096, last);
	case A_RESP_FIRST:
		if (h_data_pdu(c, cid, off, 0, half, 0) || ft_resp(c, cid, 0, 0, 0))
			return -1;
		return h_garbage_pdu(c, cid, half, len - half, last);
	case A_SUCCESS_AND_RESP:
		if (h_data_pdu(c, cid, off, 0, len, last | FERRY_NVME_TCP_F_SUCCESS))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	case A_BAD_DDGST: {
		uint8_t *p = h_data(c, off, 0, len);
		int rc = h_c2h(c, cid, 0, half, p, half, 0, 0) ||
			 h_c2h(c, cid, half, len - half, p + half, len - half, last, 1);
		free(p);
		if (rc)
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	}
	case A_GARBAGE_HDR: {
		uint8_t g[200];
		for (unsigned i = 0; i < sizeof(g); i++)
			g[i] = (uint8_t)(i * 37 + 11);
		if (h_data_pdu(c, cid, off, 0, half, 0) || ft_write(c->fd, g, sizeof(g)))
			return -1;
		/* then the rest as if nothing happened: the host must not take it */
		if (h_data_pdu(c, cid, off, half, len - half, last))
			return -1;
		return ft_resp(c, cid, 0, 0, 0);
	}
	case A_RESET_MID_PDU: {
		uint8_t *src = h_data(c, off, 0, len);
		uint8_t *buf = malloc(len + 64);
		uint32_t n = h_build(c, buf, cid, src, 0, len, last);
		ft_write(c->fd, buf, n / 2);
		free(src);
		free(buf);
		struct linger lg = {1, 0}; /* RST */
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return -1;
	}
	case A_HUGE_PLEN: {
		uint8_t buf[64];
		uint8_t *src = h_data(c, off, 0, 64);
		uint32_t n = h_build(c, buf, cid, src, 0, 16, last);
		free(src);
		struct ferry_nvme_tcp_ch *ch = (void *)buf;
		ch->plen = 0xfffffff0u;
		if (c->hdgst) {
			uint32_t crc = ferry_crc32c(0, buf, 24);
			memcpy(buf + 24, &crc, 4);
		}
		if (ft_write(c->fd, buf, n))
			return -1;
		uint8_t z[4096];
		memset(z, 0xc3, sizeof(z));
		return ft_write(c->fd, z, sizeof(z)) ? -1 : 0;
	}
	case A_SKIP_SUCCESS:
		return h_data_pdu(c, cid, off, half, len - half, last | FERRY_NVME_TCP_F_SUCCESS)
			       ? -1
			       : 0;
	case A_BAD_HDGST: {
		uint8_t *src = h_data(c, off, 0, len);
		uint8_t *buf = malloc(len + 64);
		uint32_t n = h_build(c, buf, cid, src, 0, len, last);
		if (c->hdgst)
			buf[24] ^= 0x10;
		else
			buf[8] ^= 0x10; /* no header digest: DATAO off by 16 */
		int rc = ft_write(c->fd, buf, n);
		free(src);
		free(buf);
		return rc ? -1 : ft_resp(c, cid, 0, 0, 0);
	}
	default:
		return 1;
	}
}

static int h_hook(struct fake_conn *c, struct ferry_nvme_sqe *e, int n)
{
	(void)n;
	enum attack a = (enum attack)atomic_load(&H.attack);
	int want = a == A_C2H_FOR_WRITE ? FERRY_NVME_CMD_WRITE : FERRY_NVME_CMD_READ;
	if (e->opcode != want || atomic_load(&H.armed) <= 0)
		return 1;
	atomic_fetch_sub(&H.armed, 1);
	atomic_fetch_add(&H.hits, 1);
	if (a == A_C2H_FOR_WRITE) {
		/* as FAULT_C2H_FOR_WRITE: data naming the write, nothing else */
		return h_garbage_pdu(c, e->cid, 0, 512, FERRY_NVME_TCP_F_LAST_PDU) ? -1 : 0;
	}
	return h_read(c, e, a);
}

/* One I/O polled until it completes (bounded), then polled a little more so a second
 * completion or a late write into the destination would show. */
static int run(struct ferry_bdev *b, enum ferry_bdev_io_type type, uint64_t lba, uint64_t n,
	       const struct ferry_mem *mem)
{
	struct ferry_bdev_io io;
	struct done d;
	io_prep(&io, &d, type, lba, n, mem);
	int rc = ferry_bdev_submit(b, &io);
	if (rc)
		return rc;
	io_wait(&io, &d);
	if (!d.calls && getenv("HS_DEBUG")) {
		struct ferry_bdev_nvmf_stats st = stats_of(b);
		fprintf(stderr,
			"hung: losses %llu reconnects %llu retries %llu ddp_ios %llu dgst_err %llu "
			"io_errors %llu nicerr %llu\n",
			(unsigned long long)st.connection_losses, (unsigned long long)st.reconnects,
			(unsigned long long)st.retries, (unsigned long long)st.ddp_ios,
			(unsigned long long)st.digest_errors, (unsigned long long)st.io_errors,
			(unsigned long long)st.ddp_nic_errors);
	}
	cr_assert_eq(d.calls, 1, "I/O did not complete within 20 s");
	uint64_t end = tm_now_ns() + 50000000ull;
	while (tm_now_ns() < end)
		ferry_bdev_poll(b, 64);
	cr_assert_eq(d.calls, 1, "I/O completed %d times", d.calls);
	return d.status;
}

static struct fake_target T;
static uint8_t G_local[(HS_PAGES + 2 * HS_CANARY) * TM_PAGE] __attribute__((aligned(4096)));

struct env {
	struct ferry_device *dev;
	struct ferry_mock_host *host;
	struct ferry_bdev *b;
	int dgst;
};

static void env_up(struct env *e, const char *nic_args, int dgst, uint32_t flags)
{
	memset(e, 0, sizeof(*e));
	ft_defaults(&T);
	T.io_hook = h_hook;
	cr_assert_eq(ft_start(&T), 0);
	fill(T.storage, (size_t)T.blocks * T.block_size, 21);
	char args[256];
	snprintf(args, sizeof(args), "host_mem=4M,functions=nvme:nic%s%s", *nic_args ? "," : "",
		 nic_args);
	e->dev = tm_open(args);
	e->host = tm_host(e->dev);
	/* nvme IOVA pages 16.. -> host pages HS_HOST..; the nic function sees the canary pages
	 * around them too (a NIC that writes there is not stopped by its IOMMU) */
	tm_map(e->host, "nvme", 16, HS_HOST, HS_PAGES, TM_RW);
	tm_map(e->host, "nic", 512 - HS_CANARY, HS_HOST - HS_CANARY, HS_PAGES + 2 * HS_CANARY,
	       TM_RW);
	struct ferry_bdev_nvmf_opts o = {0};
	o.size = sizeof(o);
	o.name = "nvmf_ddp_hostile";
	o.nic = e->dev;
	o.addr = T.addr;
	o.subnqn = "nqn.2026-01.io.ferry:hostile";
	o.hdgst = (uint8_t)dgst;
	o.ddgst = (uint8_t)dgst;
	o.num_io_queues = 1;
	o.retry_count = 3;
	o.reconnect_delay_ms = 5;
	o.connect_timeout_ms = 2000;
	o.kato_ms = 1000; /* an I/O never answered fails the connection after about 3 s */
	o.flags = flags;
	e->dgst = dgst;
	int rc = ferry_bdev_nvmf_create(&o, &e->b);
	cr_assert_eq(rc, 0, "create: %s (%s)", ferry_strerror(rc), ferry_last_error());
	cr_assert_eq(stats_of(e->b).ddp_queues, 1, "the I/O queue is not offloaded");
}

static void env_down(struct env *e)
{
	cr_assert_eq(ferry_bdev_destroy(e->b), 0);
	ferry_mock_host_close(e->host);
	ferry_device_close(e->dev);
	ft_stop(&T);
}

struct outcome {
	int status;
	int right; /* the destination holds the namespace's bytes */
};

static void check_canaries(const uint8_t *base, size_t dest_len, const char *where)
{
	for (size_t j = 0; j < HS_CANARY * TM_PAGE; j++)
		cr_assert_eq(base[j], HS_FILL, "%s: canary byte %zu before the destination written",
			     where, HS_CANARY * TM_PAGE - j);
	const uint8_t *after = base + HS_CANARY * TM_PAGE + dest_len;
	size_t n = (HS_PAGES + HS_CANARY) * TM_PAGE - dest_len;
	for (size_t j = 0; j < n; j++)
		cr_assert_eq(after[j], HS_FILL, "%s: byte %zu after the destination written", where,
			     j);
}

/* One attacked read into local memory (host = 0) or host memory (host = 1). */
static struct outcome attacked_read(struct env *e, enum attack a, int host)
{
	uint8_t *base = host ? ferry_mock_host_ptr(e->host, (HS_HOST - HS_CANARY) * TM_PAGE,
						   (HS_PAGES + 2 * HS_CANARY) * TM_PAGE)
			     : G_local;
	cr_assert_not_null(base);
	memset(base, HS_FILL, (HS_PAGES + 2 * HS_CANARY) * TM_PAGE);
	uint8_t *dst = base + HS_CANARY * TM_PAGE;
	struct iovec iov = {host ? TM_IOVA(16) : dst, HS_LEN};
	struct ferry_mem m = {.domain = host ? tm_domain(e->dev, "nvme") : NULL,
			      .iov = &iov,
			      .iovcnt = 1};
	atomic_store(&H.attack, a);
	atomic_store(&H.hits, 0);
	atomic_store(&H.armed, 1);
	struct outcome out;
	out.status = run(e->b, FERRY_BDEV_IO_READ, HS_LBA, HS_LEN / HS_BS, &m);
	atomic_store(&H.armed, 0);
	cr_assert_eq(atomic_load(&H.hits), 1, "the attack was not delivered");
	out.right = !memcmp(dst, T.storage + (size_t)HS_LBA * HS_BS, HS_LEN);
	char where[96];
	snprintf(where, sizeof(where), "attack %d into %s memory, digests %s", a,
		 host ? "host" : "local", e->dgst ? "on" : "off");
	check_canaries(base, HS_LEN, where);
	cr_assert(out.status != 0 || out.right, "%s: status 0 with wrong data", where);
	if (out.status)
		cr_assert_eq(out.status, -EIO, "%s: status %d", where, out.status);
	/* the next read (not attacked) is right: the queue recovered */
	memset(base, HS_FILL, (HS_PAGES + 2 * HS_CANARY) * TM_PAGE);
	int rc = run(e->b, FERRY_BDEV_IO_READ, HS_LBA, HS_LEN / HS_BS, &m);
	cr_assert_eq(rc, 0, "%s: the read after the attack failed: %d (%s)", where, rc,
		     ferry_last_error());
	cr_assert_eq(memcmp(dst, T.storage + (size_t)HS_LBA * HS_BS, HS_LEN), 0,
		     "%s: the read after the attack has wrong data", where);
	check_canaries(base, HS_LEN, where);
	return out;
}

/* An attack against local and host memory, digests off and on; @p expect_loss: the attack
 * must fail the connection (the read then retried on a new one: status 0, right data). */
static void attack_all(enum attack a, const char *nic_args, int expect_loss)
{
	for (int dgst = 0; dgst < 2; dgst++) {
		struct env e;
		env_up(&e, nic_args, dgst, 0);
		for (int host = 0; host < 2; host++) {
			struct ferry_bdev_nvmf_stats s0 = stats_of(e.b);
			struct outcome o = attacked_read(&e, a, host);
			struct ferry_bdev_nvmf_stats s1 = stats_of(e.b);
			if (getenv("HS_DEBUG"))
				fprintf(stderr,
					"attack %d host %d dgst %d: status %d losses %llu\n", a,
					host, dgst, o.status,
					(unsigned long long)(s1.connection_losses -
							     s0.connection_losses));
			if (expect_loss) {
				cr_assert_geq(s1.connection_losses - s0.connection_losses, 1,
					      "attack %d (host %d, dgst %d): connection kept", a,
					      host, dgst);
				cr_assert_eq(o.status, 0, "attack %d (host %d, dgst %d): %d", a,
					     host, dgst, o.status);
				cr_assert(o.right);
			}
		}
		env_down(&e);
	}
}

TestSuite(nvmf_ddp_hostile, .timeout = 120);

static void quiet(void)
{
	if (!getenv("HS_DEBUG"))
		ferry_log_set_handler(tm_quiet_log);
}

Test(nvmf_ddp_hostile, data_past_the_transfer, .init = quiet)
{
	attack_all(A_PAST_TRANSFER, "", 1);
}

Test(nvmf_ddp_hostile, data_past_the_mapping, .init = quiet)
{
	attack_all(A_PAST_MAPPING, "", 1);
}

Test(nvmf_ddp_hostile, offset_backwards, .init = quiet)
{
	attack_all(A_BACKWARDS, "", 1);
}

Test(nvmf_ddp_hostile, offsets_overlapping, .init = quiet)
{
	attack_all(A_OVERLAP, "", 1);
}

Test(nvmf_ddp_hostile, datal_zero, .init = quiet)
{
	attack_all(A_DATAL0, "", 1);
}

/* Valid PDUs cut at odd offsets into 64-byte NIC packets: right data, nothing lost. */
Test(nvmf_ddp_hostile, odd_split_small_packets, .init = quiet)
{
	for (int dgst = 0; dgst < 2; dgst++) {
		struct env e;
		env_up(&e, "nic_pkt=64", dgst, 0);
		for (int host = 0; host < 2; host++) {
			struct ferry_bdev_nvmf_stats s0 = stats_of(e.b);
			struct outcome o = attacked_read(&e, A_ODD_SPLIT, host);
			struct ferry_bdev_nvmf_stats s1 = stats_of(e.b);
			cr_assert_eq(o.status, 0);
			cr_assert(o.right);
			cr_assert_eq(s1.connection_losses, s0.connection_losses);
			cr_assert_gt(s1.ddp_placed_bytes, s0.ddp_placed_bytes);
		}
		env_down(&e);
	}
}

Test(nvmf_ddp_hostile, data_for_unknown_cid, .init = quiet)
{
	attack_all(A_UNKNOWN_CID, "", 1);
}

/* Data for a read already answered (its teardown maybe pending): never placed into the
 * completed read's destination (attacked_read() checks it after the next read too). */
Test(nvmf_ddp_hostile, data_after_the_answer, .init = quiet)
{
	attack_all(A_LATE_DATA, "", 1);
}

Test(nvmf_ddp_hostile, capsule_resp_before_the_data, .init = quiet)
{
	attack_all(A_RESP_FIRST, "", 1);
}

Test(nvmf_ddp_hostile, success_flag_and_capsule_resp, .init = quiet)
{
	attack_all(A_SUCCESS_AND_RESP, "", 1);
}

Test(nvmf_ddp_hostile, garbage_header, .init = quiet)
{
	attack_all(A_GARBAGE_HDR, "nic_pkt=256", 1);
}

Test(nvmf_ddp_hostile, reset_mid_pdu, .init = quiet)
{
	attack_all(A_RESET_MID_PDU, "nic_pkt=1024", 1);
}

Test(nvmf_ddp_hostile, huge_plen, .init = quiet)
{
	attack_all(A_HUGE_PLEN, "", 1);
}

Test(nvmf_ddp_hostile, success_without_the_first_half, .init = quiet)
{
	attack_all(A_SKIP_SUCCESS, "", 1);
}

Test(nvmf_ddp_hostile, bad_header_digest, .init = quiet)
{
	attack_all(A_BAD_HDGST, "nic_pkt=512", 1);
}

/* A wrong data digest: -EIO whether the NIC verifies (digest delivered without CRC_OK) or
 * not (software checks, for host memory after pulling the PDUs back). */
static void bad_digest(const char *nic_args)
{
	struct env e;
	env_up(&e, nic_args, 1, 0);
	for (int host = 0; host < 2; host++) {
		struct ferry_bdev_nvmf_stats s0 = stats_of(e.b);
		struct outcome o = attacked_read(&e, A_BAD_DDGST, host);
		struct ferry_bdev_nvmf_stats s1 = stats_of(e.b);
		cr_assert_eq(o.status, -EIO, "host %d: a wrong digest gave %d", host, o.status);
		cr_assert_geq(s1.digest_errors - s0.digest_errors, 1);
	}
	env_down(&e);
}

Test(nvmf_ddp_hostile, bad_digest_nic_verifying, .init = quiet)
{
	bad_digest("");
}

Test(nvmf_ddp_hostile, bad_digest_nic_not_verifying, .init = quiet)
{
	bad_digest("crc_miss_ppm=1000000");
}

Test(nvmf_ddp_hostile, bad_digest_nic_not_placing, .init = quiet)
{
	bad_digest("place_miss_ppm=1000000,crc_miss_ppm=500000,nic_pkt=512");
}

/* C2HData naming a write: the connection fails, the write is retried and lands. */
Test(nvmf_ddp_hostile, c2h_for_a_write, .init = quiet)
{
	struct env e;
	env_up(&e, "", 1, 0);
	uint8_t w[HS_LEN];
	fill(w, sizeof(w), 99);
	struct iovec iov = {w, sizeof(w)};
	struct ferry_mem m = {.iov = &iov, .iovcnt = 1};
	atomic_store(&H.attack, A_C2H_FOR_WRITE);
	atomic_store(&H.armed, 1);
	struct ferry_bdev_nvmf_stats s0 = stats_of(e.b);
	cr_assert_eq(run(e.b, FERRY_BDEV_IO_WRITE, HS_LBA, HS_LEN / HS_BS, &m), 0);
	cr_assert_eq(atomic_load(&H.armed), 0);
	cr_assert_geq(stats_of(e.b).connection_losses - s0.connection_losses, 1);
	cr_assert_eq(memcmp(T.storage + (size_t)HS_LBA * HS_BS, w, sizeof(w)), 0);
	struct outcome o = attacked_read(&e, A_NONE, 1);
	cr_assert_eq(o.status, 0);
	cr_assert(o.right);
	env_down(&e);
}
