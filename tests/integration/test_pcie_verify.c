/*
 * 100 000 random verified I/Os from the host process through the whole stack: mock PCIe
 * endpoint, "pcie" transport, controller core, crypto bdev, dif bdev, malloc. Every write
 * carries its LBA and generation, every read is checked against the last completed write, and
 * at the end every block of the range is read back. Data start 512 bytes into their buffers,
 * so every 4 KiB I/O spans two pages (PRP1 + PRP2); half the buffers use scattered host pages.
 */
#include "pcie_host_util.h"

static int sc_verify(void *ctx, int mfd, int pfd)
{
	struct nvmeh_ctrlr *c = ph_up(mfd, pfd, 2, 0, 128);
	if (!c)
		return 1;
	struct lg_opts o = {.size = sizeof(o),
			    .qd = 32,
			    .bs = 4096,
			    .read_pct = 50,
			    .random = 1,
			    .verify = 1,
			    .ios = 100000,
			    .seed = 2024,
			    .range_blocks = 4096,
			    .buf_offset = 512,
			    .format = 1};
	struct lg *g = NULL;
	HCHECK(lg_create(c, &o, &g) == 0, "lg_create");
	HCHECK(lg_run(g, &ph_sh->r) == 0, "run");
	uint64_t bad = 99;
	HCHECK(lg_verify_all(g, &bad) == 0, "read-back");
	ph_sh->v[0] = bad;
	lg_destroy(g);
	HCHECK(nvmeh_shutdown(c) == 0, "shutdown");
	nvmeh_close(c);
	return 0;
}

Test(pcie_verify, random_100k_through_crypto_dif, .timeout = 170)
{
	struct ep_stack *s = ph_stack(1, NULL, NULL);
	ph_run(s, sc_verify, NULL);
	cr_assert_eq(ph_sh->r.ios, 100000);
	cr_assert_gt(ph_sh->r.reads, 40000);
	cr_assert_gt(ph_sh->r.writes, 40000);
	cr_assert_eq(ph_sh->r.errors, 0);
	cr_assert_eq(ph_sh->r.verify_errors, 0);
	cr_assert_eq(ph_sh->v[0], 0, "blocks not holding their last completed write");
	struct ferry_nvme_ctrlr_stats st = ph_ctrlr_stats(s);
	cr_assert_geq(st.io_cmds, 100000 + 4096);
	cr_assert_eq(st.errors, 0);
	ep_stack_destroy(s);
}
