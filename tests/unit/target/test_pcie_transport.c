/*
 * The "pcie" NVMe transport (ferry/pcie_transport.h) on the mock PCIe endpoint, with a host
 * thread of this process doing the MMIO: built-in registration, create/listen validation,
 * BAR0 accesses reaching the controller's registers (4/8 bytes as they are, 1/2-byte reads
 * from the containing register, 1/2-byte writes refused), the enable sequence through the
 * BAR, doorbells, MSI-X of the admin queue, counters, and teardown of an enabled controller.
 */
#include <pthread.h>
#include <ferry/bdev.h>
#include <ferry/endpoint.h>
#include <ferry/hal/hal.h>
#include <ferry/mock_pcie.h>
#include <ferry/nvme.h>
#include <ferry/pcie_transport.h>
#include <ferry/transport.h>
#include <ferry/bdev_malloc.h>
#include <ferry/module/transport.h>
#include <ferry/module/nvme_ctrlr.h>
#include "test_mock_util.h"

static struct ferry_device *dev;
static struct ferry_bdev *bdev;
static struct ferry_nvme_subsystem *subsys;
static struct ferry_mock_pcie_host *ph;
static struct ferry_mock_host *mh;

static void setup(void)
{
	dev = tm_open("host_mem=1M,iova_size=1M");
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "tpcie_malloc",
					    .block_size = 512,
					    .num_blocks = 64};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &bdev), 0);
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = "nqn.2024-01.io.ferry:tpcie"};
	cr_assert_eq(ferry_nvme_subsystem_create(&so, &subsys), 0);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = bdev, .nsid = 1};
	cr_assert_eq(ferry_nvme_subsystem_add_ns(subsys, &no, NULL), 0);
	int fd;
	cr_assert_eq(ferry_mock_pcie_fd(dev, &fd), 0);
	cr_assert_eq(ferry_mock_pcie_host_open(fd, &ph), 0);
	mh = tm_host(dev);
}

static void teardown(void)
{
	ferry_mock_host_close(mh);
	ferry_mock_pcie_host_close(ph);
	cr_assert_eq(ferry_nvme_subsystem_destroy(subsys), 0, "no controller left behind");
	ferry_bdev_destroy(bdev);
	ferry_device_close(dev);
}

static struct ferry_transport *make(const char *args)
{
	struct ferry_transport_opts o = {.size = sizeof(o), .device = dev, .args = args};
	struct ferry_transport *t = NULL;
	int rc = ferry_transport_create(FERRY_PCIE_TRANSPORT_NAME, &o, &t);
	cr_assert_eq(rc, 0, "create '%s': %d (%s)", args ? args : "", rc, ferry_last_error());
	return t;
}

TestSuite(pcie_transport, .init = setup, .fini = teardown);

static int nopcie_open(struct ferry_device *d, const char *a)
{
	return 0;
}

static void nopcie_close(struct ferry_device *d)
{
}

static const struct ferry_hal_backend nopcie = {.abi_version = FERRY_HAL_ABI_VERSION,
						.name = "tpcie_nopcie",
						.open = nopcie_open,
						.close = nopcie_close};

Test(pcie_transport, registered_and_create_validation)
{
	const struct ferry_transport_ops *ops = ferry_transport_find("pcie");
	cr_assert_not_null(ops, "built in: known without registering anything");
	cr_assert_eq(ops->kind, FERRY_TRANSPORT_MEMORY);
	int seen = 0;
	for (unsigned int i = 0; ferry_transport_get(i); i++)
		seen |= ferry_transport_get(i) == ops;
	cr_assert(seen);

	struct ferry_transport *t = NULL;
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_transport_create("pcie", NULL, &t), -EINVAL, "no device");
	struct ferry_transport_opts o = {.size = sizeof(o), .device = dev, .args = "io_queues=0"};
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -EINVAL);
	o.args = "entries=1";
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -EINVAL);
	o.args = "mdts=11";
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -EINVAL);
	o.args = "sgl=2";
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -EINVAL);
	o.args = "accel=2";
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -EINVAL);
	o.args = "colour=blue";
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -EINVAL, "unknown key");
	o.args = "io_queues=x";
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -EINVAL);
	cr_assert_eq(ferry_hal_register(&nopcie), 0);
	struct ferry_device *plain = NULL;
	cr_assert_eq(ferry_device_open("tpcie_nopcie", NULL, &plain), 0);
	o.device = plain;
	o.args = NULL;
	cr_assert_eq(ferry_transport_create("pcie", &o, &t), -ENOTSUP, "no PCIe endpoint class");
	ferry_device_close(plain);
	cr_assert_eq(ferry_hal_unregister(&nopcie), 0);
	ferry_log_set_handler(NULL);
	cr_assert_null(t);

	t = make("io_queues=4,entries=256,mdts=6,inflight=64,sgl=0");
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=2"), -EINVAL, "2 functions");
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=x"), -EINVAL);
	cr_assert_eq(ferry_transport_listen(t, subsys, "function=0"), -EINVAL);
	cr_assert_eq(ferry_transport_listen(t, subsys, "127.0.0.1:4420"), -EINVAL);
	ferry_log_set_handler(NULL);
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=0"), 0);
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=0"), -EADDRINUSE);
	ferry_log_set_handler(NULL);
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=1"), 0, "a second function");
	cr_assert_not_null(ferry_pcie_transport_get_ctrlr(t, 0));
	cr_assert_not_null(ferry_pcie_transport_get_ctrlr(t, 1));
	cr_assert_neq(ferry_pcie_transport_get_ctrlr(t, 0), ferry_pcie_transport_get_ctrlr(t, 1));
	cr_assert_null(ferry_pcie_transport_get_ctrlr(t, 2));
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 0), 1);
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 1), 1);
	/* The options reached the controller: CAP.MQES = entries - 1. */
	uint64_t cap = 0;
	cr_assert_eq(ferry_nvme_ctrlr_reg_read(ferry_pcie_transport_get_ctrlr(t, 0),
					       FERRY_NVME_REG_CAP, 8, &cap),
		     0);
	cr_assert_eq(FERRY_NVME_CAP_MQES(cap), 255);
	struct ferry_pcie_transport_stats st = {.size = sizeof(st)};
	ferry_log_set_handler(tm_quiet_log);
	cr_assert_eq(ferry_pcie_transport_get_stats(t, 2, &st), -ENOENT);
	st.size = 4;
	cr_assert_eq(ferry_pcie_transport_get_stats(t, 0, &st), -EINVAL);
	ferry_log_set_handler(NULL);
	ferry_transport_destroy(t);
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 0), 0, "destroy detaches");
}

/* ---- MMIO from a host thread while the test thread polls the transport ------------------ */

struct job {
	void (*run)(struct job *j);
	volatile int done;
	int rc[32];
	uint64_t v[32];
	uint64_t asq, acq;
};

static void *job_thread(void *arg)
{
	struct job *j = arg;
	j->run(j);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void serve(struct ferry_transport *t, struct job *j)
{
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, job_thread, j), 0);
	uint64_t end = tm_now_ns() + 10000000000ull;
	while (!__atomic_load_n(&j->done, __ATOMIC_ACQUIRE)) {
		cr_assert(tm_now_ns() < end, "host thread hangs");
		cr_assert_geq(ferry_transport_poll(t, 32), 0);
	}
	pthread_join(th, NULL);
	ferry_transport_poll(t, 32);
}

static void regs_script(struct job *j)
{
	j->rc[0] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_CAP, 8, &j->v[0]);
	j->rc[1] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_VS, 4, &j->v[1]);
	j->rc[2] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_VS + 2, 2, &j->v[2]);
	j->rc[3] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_VS + 1, 1, &j->v[3]);
	j->rc[4] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_CAP + 4, 4, &j->v[4]);
	/* Refused writes: 1 and 2 bytes to CC, 8 bytes to a 32-bit register. */
	j->rc[5] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_CC, 1, 1);
	j->rc[6] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_CC, 2, 1);
	j->rc[7] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_VS, 8, 1);
	j->rc[8] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_CC, 4, &j->v[8]);
	/* An 8-byte read of a 32-bit register fails as a PCIe read: all ones. */
	j->rc[9] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_CC + 4, 8, &j->v[9]);
	/* Inside BAR0 but beyond the registers the controller decodes: reads 0 or fails. */
	j->rc[10] = ferry_mock_pcie_mmio_read(ph, 0, 0x800, 4, &j->v[10]);
}

Test(pcie_transport, register_access_through_bar0)
{
	struct ferry_transport *t = make(NULL);
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=0"), 0);
	struct ferry_nvme_ctrlr *c = ferry_pcie_transport_get_ctrlr(t, 0);
	uint64_t cap = 0, vs = 0;
	ferry_nvme_ctrlr_reg_read(c, FERRY_NVME_REG_CAP, 8, &cap);
	ferry_nvme_ctrlr_reg_read(c, FERRY_NVME_REG_VS, 4, &vs);
	struct job j = {.run = regs_script};
	ferry_log_set_handler(tm_quiet_log);
	serve(t, &j);
	ferry_log_set_handler(NULL);
	cr_assert_eq(j.rc[0], 0);
	cr_assert_eq(j.v[0], cap);
	cr_assert_eq(j.v[1], vs);
	cr_assert_eq(j.v[2], vs >> 16, "2-byte read of VS.MJR");
	cr_assert_eq(j.v[3], (vs >> 8) & 0xff, "1-byte read of VS.MNR");
	cr_assert_eq(j.v[4], cap >> 32);
	for (int i = 5; i <= 8; i++)
		cr_assert_eq(j.rc[i], 0, "posted: %d", i);
	cr_assert_eq(j.v[8], 0, "CC unchanged by the refused writes");
	cr_assert_eq(j.rc[9], -EIO);
	cr_assert_eq(j.v[9], UINT64_MAX);
	struct ferry_pcie_transport_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_pcie_transport_get_stats(t, 0, &st), 0);
	cr_assert_geq(st.bad_accesses, 4, "1/2-byte writes, 8-byte write and read refused");
	cr_assert_geq(st.bar_reads, 6);
	ferry_transport_destroy(t);
}

static void enable_script(struct job *j)
{
	/* Admin queues of 2 entries: SQ at IOVA 0x1000, CQ at 0x2000. */
	j->rc[0] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_AQA, 4, 0x00010001);
	j->rc[1] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_ASQ, 8, 0x1000);
	j->rc[2] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_ACQ, 8, 0x2000);
	j->rc[3] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_CC, 4,
					      FERRY_NVME_CC_EN | (6u << 16) | (4u << 20));
	uint64_t csts = 0;
	uint64_t end = tm_now_ns() + 5000000000ull;
	while (!(csts & FERRY_NVME_CSTS_RDY) && tm_now_ns() < end)
		j->rc[4] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_CSTS, 4, &csts);
	j->v[4] = csts;
	/* Keep Alive (no data) at SQ slot 0, then the doorbell; wait for vector 0. */
	struct ferry_nvme_sqe *sq = ferry_mock_host_ptr(mh, 0x10000, 4096);
	memset(sq, 0, 64);
	sq->opcode = FERRY_NVME_ADM_KEEP_ALIVE;
	sq->cid = 0x55;
	uint32_t seen = 0;
	ferry_mock_pcie_msix_count(ph, 0, 0, &seen);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	j->rc[5] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_DBS, 4, 1);
	j->rc[6] = ferry_mock_pcie_msix_wait(ph, 0, 0, &seen, 5000000000ull);
	struct ferry_nvme_cqe *cq = ferry_mock_host_ptr(mh, 0x20000, 4096);
	j->v[7] = __atomic_load_n(&cq->status, __ATOMIC_ACQUIRE);
	j->v[8] = cq->cid;
	j->v[9] = cq->sqhd;
	j->rc[10] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_DBS + 4, 4, 1); /* CQ head */
	/* A doorbell of a queue that does not exist: ignored by the controller. */
	j->rc[11] = ferry_mock_pcie_mmio_write(ph, 0, FERRY_NVME_REG_DBS + 8 * 3, 4, 1);
	j->rc[12] = ferry_mock_pcie_mmio_read(ph, 0, FERRY_NVME_REG_CSTS, 4, &j->v[12]);
}

Test(pcie_transport, enable_doorbell_completion_and_msix)
{
	tm_map(mh, "nvme", 1, 0x10, 1, FERRY_MOCK_IOMMU_READ);  /* admin SQ */
	tm_map(mh, "nvme", 2, 0x20, 1, FERRY_MOCK_IOMMU_WRITE); /* admin CQ */
	struct ferry_transport *t = make(NULL);
	cr_assert_eq(ferry_transport_listen(t, subsys, "fn=0"), 0);
	struct job j = {.run = enable_script};
	ferry_log_set_handler(tm_quiet_log);
	serve(t, &j);
	ferry_log_set_handler(NULL);
	for (int i = 0; i <= 6; i++)
		cr_assert_eq(j.rc[i], 0, "step %d: %d", i, j.rc[i]);
	cr_assert_eq(j.v[4] & FERRY_NVME_CSTS_RDY, FERRY_NVME_CSTS_RDY);
	cr_assert_eq(j.v[7], 1, "phase 1, status success: 0x%llx", (unsigned long long)j.v[7]);
	cr_assert_eq(j.v[8], 0x55);
	cr_assert_eq(j.v[9], 1, "SQ head moved past the command");
	cr_assert_eq(j.v[12] & FERRY_NVME_CSTS_CFS, 0, "a bad doorbell is not fatal");
	struct ferry_pcie_transport_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_pcie_transport_get_stats(t, 0, &st), 0);
	cr_assert_eq(st.doorbells, 3);
	cr_assert_eq(st.irqs, 1);
	struct ferry_mock_pcie_stats ms = {.size = sizeof(ms)};
	cr_assert_eq(ferry_mock_pcie_get_stats(dev, 0, &ms), 0);
	cr_assert_eq(ms.msix, 1);
	cr_assert_eq(ms.doorbells, 3);
	struct ferry_nvme_ctrlr_stats cs = {.size = sizeof(cs)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(ferry_pcie_transport_get_ctrlr(t, 0), &cs), 0);
	cr_assert_eq(cs.admin_cmds, 1);
	cr_assert_eq(cs.irqs, 1);
	/* Destroy with the controller enabled: it is disabled and torn down. */
	ferry_transport_destroy(t);
}

Test(pcie_transport, endpoint_convenience)
{
	struct ferry_bdev *b2 = NULL;
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "tpcie_ep",
					    .block_size = 4096,
					    .num_blocks = 16};
	cr_assert_eq(ferry_bdev_malloc_create(&mo, &b2), 0);
	struct ferry_bdev *ns[] = {b2};
	struct ferry_endpoint_opts eo = {.size = sizeof(eo),
					 .transport = "pcie",
					 .device = dev,
					 .address = "fn=1",
					 .nqn = "nqn.2024-01.io.ferry:tpcie-ep",
					 .bdevs = ns,
					 .num_bdevs = 1,
					 .transport_args = "io_queues=2"};
	struct ferry_endpoint *e = NULL;
	cr_assert_eq(ferry_endpoint_create(&eo, &e), 0);
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 1), 1);
	cr_assert_not_null(ferry_pcie_transport_get_ctrlr(ferry_endpoint_get_transport(e), 1));
	cr_assert_eq(ferry_endpoint_poll(e, 16), 0, "idle");
	ferry_endpoint_destroy(e);
	cr_assert_eq(ferry_mock_pcie_host_attached(ph, 1), 0);
	cr_assert_eq(ferry_bdev_destroy(b2), 0, "released by the endpoint");
}
