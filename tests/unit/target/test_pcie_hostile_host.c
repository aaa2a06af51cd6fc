/*
 * Hostile-host regressions for the PCIe path: the mock endpoint's poll with no limit
 * must end even when a hostile host keeps publishing requests as fast as they are consumed,
 * and the "pcie" transport's BAR handlers must refuse what a less careful backend could pass
 * them (a sub-dword read that crosses a register, a doorbell index whose offset wraps around
 * 32 bits onto the controller registers).
 */
#include <ferry/hal/hal.h>
#include <ferry/mock_pcie.h>
#include <ferry/nvme.h>
#include <ferry/pcie_transport.h>
#include <ferry/transport.h>
#include <ferry/module/memdomain.h>
#include "test_mock_util.h"

/* ---- mock endpoint: poll(0) against a host that never stops --------------------------- */

static struct ferry_mock_pcie_host *hostile_ph;
static uint32_t republish_left, writes_seen;

static int hostile_read(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t *val)
{
	*val = 0;
	return 0;
}

/* Runs inside poll(): the slot was handed back, so "the host" publishes the next request. */
static int hostile_write(void *ctx, uint32_t bar, uint64_t off, uint32_t size, uint64_t val)
{
	writes_seen++;
	if (republish_left) {
		republish_left--;
		cr_assert_eq(ferry_mock_pcie_mmio_write(hostile_ph, 0, 0x20, 4, val + 1), 0);
	}
	return 0;
}

static const struct ferry_hal_pcie_ep_handlers hostile_handlers = {hostile_read, hostile_write,
								   NULL};

Test(pcie_hostile_host, unlimited_poll_ends_against_a_host_that_keeps_posting)
{
	struct ferry_device *dev = tm_open("host_mem=1M,iova_size=1M");
	const struct ferry_hal_pcie_ep_ops *ep = ferry_hal_dev_get_backend(dev)->pcie_ep;
	int fd = -1;
	cr_assert_eq(ferry_mock_pcie_fd(dev, &fd), 0);
	cr_assert_eq(ferry_mock_pcie_host_open(fd, &hostile_ph), 0);
	struct ferry_hal_pcie_ep_attach_opts o = {.size = sizeof(o), .handlers = &hostile_handlers};
	cr_assert_eq(ep->attach(dev, 0, &o), 0);

	uint32_t total = 10 * FERRY_MOCK_PCIE_RING + 1;
	republish_left = total - 1;
	writes_seen = 0;
	cr_assert_eq(ferry_mock_pcie_mmio_write(hostile_ph, 0, 0x20, 4, 0), 0);
	int n = ep->poll(dev, 0);
	cr_assert_leq((uint32_t)n, FERRY_MOCK_PCIE_RING,
		      "one poll(0) consumed %d requests: a host publishing as fast as the "
		      "firmware consumes keeps it in poll forever",
		      n);
	cr_assert_gt(n, 0);
	/* Nothing is lost: later polls deliver the rest, in order. */
	for (int i = 0; i < 100 && writes_seen < total; i++)
		cr_assert_geq(ep->poll(dev, 0), 0);
	cr_assert_eq(writes_seen, total);
	cr_assert_eq(ep->poll(dev, 0), 0);

	ep->detach(dev, 0);
	ferry_mock_pcie_host_close(hostile_ph);
	ferry_device_close(dev);
}

/* ---- "pcie" transport handlers behind a minimal backend ------------------------------- */

static const struct ferry_hal_pcie_ep_handlers *fk_h;
static void *fk_ctx;
static uint32_t fk_db_count;
static struct ferry_memdomain *fk_dom;

static int fk_query(struct ferry_device *d, struct ferry_hal_pcie_ep_info *info)
{
	info->num_functions = 1;
	info->bar0_size = 0x4000;
	info->max_msix = 32;
	return 0;
}

static int fk_attach(struct ferry_device *d, uint32_t fn,
		     const struct ferry_hal_pcie_ep_attach_opts *o)
{
	fk_h = o->handlers;
	fk_ctx = o->ctx;
	fk_db_count = o->doorbell_count;
	return 0;
}

static void fk_detach(struct ferry_device *d, uint32_t fn)
{
	fk_h = NULL;
	fk_ctx = NULL;
}

static struct ferry_memdomain *fk_get_domain(struct ferry_device *d, uint32_t fn)
{
	return fk_dom;
}

static int fk_msix(struct ferry_device *d, uint32_t fn, uint16_t vector)
{
	return 0;
}

static int fk_poll(struct ferry_device *d, uint32_t max)
{
	return 0;
}

static const struct ferry_hal_pcie_ep_ops fk_ep = {
	.abi_version = FERRY_HAL_PCIE_EP_ABI_VERSION,
	.query = fk_query,
	.attach = fk_attach,
	.detach = fk_detach,
	.get_domain = fk_get_domain,
	.msix_raise = fk_msix,
	.poll = fk_poll,
};

static int fk_open(struct ferry_device *d, const char *a)
{
	return 0;
}

static void fk_close(struct ferry_device *d)
{
}

static const struct ferry_hal_backend fk_backend = {.abi_version = FERRY_HAL_ABI_VERSION,
						    .name = "treview_fake_ep",
						    .open = fk_open,
						    .close = fk_close,
						    .pcie_ep = &fk_ep};

static int fk_pull(struct ferry_memdomain *d, void *ctx, const struct iovec *src, uint32_t sc,
		   const struct iovec *dst, uint32_t dc, ferry_memdomain_cb cb, void *arg)
{
	return -EFAULT;
}

static int fk_push(struct ferry_memdomain *d, void *ctx, const struct iovec *dst, uint32_t dc,
		   const struct iovec *src, uint32_t sc, ferry_memdomain_cb cb, void *arg)
{
	return -EFAULT;
}

static const struct ferry_memdomain_ops fk_dom_ops = {
	.abi_version = FERRY_MEMDOMAIN_OPS_ABI,
	.pull = fk_pull,
	.push = fk_push,
};

static uint64_t fk_rd(uint64_t off, uint32_t size, int *rc)
{
	uint64_t v = 0x5a5a5a5a5a5a5a5aull;
	*rc = fk_h->bar_read(fk_ctx, 0, off, size, &v);
	return v;
}

Test(pcie_hostile_host, transport_handlers_refuse_crossing_reads_and_wrapping_doorbells)
{
	struct ferry_memdomain_opts mo = {.size = sizeof(mo),
					  .type = FERRY_MEMDOMAIN_PCIE,
					  .name = "treview.fake.fn0",
					  .ops = &fk_dom_ops};
	cr_assert_eq(ferry_memdomain_create(&mo, &fk_dom), 0);
	cr_assert_eq(ferry_hal_register(&fk_backend), 0);
	struct ferry_device *dev = NULL;
	cr_assert_eq(ferry_device_open("treview_fake_ep", NULL, &dev), 0);
	struct ferry_nvme_subsystem *subsys = NULL;
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = "nqn.2024-01.io.ferry:treview"};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &subsys), 0);
	struct ferry_transport_opts to = {.size = sizeof(to), .device = dev, .args = "accel=0"};
	struct ferry_transport *t = NULL;
	cr_assert_eq(ferry_transport_create(FERRY_PCIE_TRANSPORT_NAME, &to, &t), 0);
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=0"), 0);
	cr_assert_not_null(fk_h);
	cr_assert_not_null(fk_h->doorbell);

	/* Sub-dword reads inside VS (0x00010400 for 1.4) are the register's bytes... */
	int rc;
	cr_assert_eq(fk_rd(FERRY_NVME_REG_VS + 1, 1, &rc), 0x04);
	cr_assert_eq(rc, 0);
	cr_assert_eq(fk_rd(FERRY_NVME_REG_VS + 2, 2, &rc), 0x0001);
	cr_assert_eq(rc, 0);
	/* ...but a 2-byte read at byte 3 would cross into the next register. */
	ferry_log_set_handler(tm_quiet_log);
	uint64_t v = fk_rd(FERRY_NVME_REG_VS + 3, 2, &rc);
	ferry_log_set_handler(NULL);
	cr_assert_eq(rc, -EINVAL, "misaligned 2-byte read returned %d (value 0x%llx)", rc,
		     (unsigned long long)v);

	/* CC holds a value; a doorbell index whose register offset wraps around 2^32 onto CC
	 * must not reach CC. */
	cr_assert_eq(fk_h->bar_write(fk_ctx, 0, FERRY_NVME_REG_CC, 4, 0x00460000), 0);
	cr_assert_eq(fk_rd(FERRY_NVME_REG_CC, 4, &rc), 0x00460000);
	uint32_t wrap = (uint32_t)((0x100000000ull - FERRY_NVME_REG_DBS + FERRY_NVME_REG_CC) / 4);
	ferry_log_set_handler(tm_quiet_log);
	fk_h->doorbell(fk_ctx, wrap, 0);
	ferry_log_set_handler(NULL);
	cr_assert_eq(fk_rd(FERRY_NVME_REG_CC, 4, &rc), 0x00460000, "doorbell index 0x%x rewrote CC",
		     wrap);
	struct ferry_pcie_transport_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_pcie_transport_get_stats(t, 0, &st), 0);
	cr_assert_eq(st.bad_accesses, 2, "both refusals counted");
	cr_assert_eq(st.doorbells, 0, "a refused doorbell is not a doorbell");

	/* The rules pcie_transport.h documents: misaligned reads of any size and 1/2-byte writes
	 * are refused with -EINVAL; a doorbell index at the declared count is ignored; every
	 * refusal is counted in bad_accesses. */
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(fk_rd(FERRY_NVME_REG_VS + 1, 2, &rc), 0x5a5a5a5a5a5a5a5aull, "value untouched");
	cr_assert_eq(rc, -EINVAL, "2-byte read at an odd offset");
	fk_rd(FERRY_NVME_REG_CC + 2, 4, &rc);
	cr_assert_eq(rc, -EINVAL, "misaligned 4-byte read");
	cr_assert_eq(fk_h->bar_write(fk_ctx, 0, FERRY_NVME_REG_CC, 2, 0), -EINVAL, "2-byte write");
	cr_assert_eq(fk_h->bar_write(fk_ctx, 0, FERRY_NVME_REG_CC, 1, 0), -EINVAL, "1-byte write");
	cr_assert_gt(fk_db_count, 0);
	fk_h->doorbell(fk_ctx, fk_db_count, 1);
	ferry_log_set_handler(NULL);
	cr_assert_eq(fk_rd(FERRY_NVME_REG_CC, 4, &rc), 0x00460000, "CC unchanged");
	cr_assert_eq(ferry_pcie_transport_get_stats(t, 0, &st), 0);
	cr_assert_eq(st.bad_accesses, 7, "every refusal counted (got %llu)",
		     (unsigned long long)st.bad_accesses);
	cr_assert_eq(st.doorbells, 0);
	/* The last declared doorbell is a doorbell (ignored by a disabled controller). */
	fk_h->doorbell(fk_ctx, fk_db_count - 1, 1);
	cr_assert_eq(ferry_pcie_transport_get_stats(t, 0, &st), 0);
	cr_assert_eq(st.doorbells, 1);
	cr_assert_eq(st.bad_accesses, 7);

	ferry_transport_destroy(t);
	cr_assert_eq(ferry_nvme_subsystem_destroy(subsys), 0);
	ferry_device_close(dev);
	cr_assert_eq(ferry_hal_unregister(&fk_backend), 0);
	ferry_memdomain_destroy(fk_dom);
}
