/*
 * The mock RDMA NIC and host memory: regions of the "nic" function's IOVAs (mr_reg_mem)
 * written and read by a peer, with canary host pages around that nothing reaches; a page the
 * host unmaps after registration (the access fails at the peer, no byte moves); the
 * registration checks (-EFAULT, -EXDEV); a READ landing in host memory; export_local of a
 * function domain (only mapped pages, contiguity, fd offsets, -EFAULT, -ENOBUFS) and map_gen
 * (changes at every map/unmap, also by a forked host process); and a target in a forked child
 * process serving SEND/WRITE/READ to the parent.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_mock_rdma_util.h"
#include <ferry/module/memdomain.h>

#define PG 4096u

static struct ferry_memdomain *domain_of(struct ferry_device *dev, const char *fn)
{
	char name[96];
	snprintf(name, sizeof(name), "%s.%s", ferry_device_get_name(dev), fn);
	struct ferry_memdomain *d = ferry_memdomain_lookup(name);
	cr_assert_not_null(d, "no domain %s", name);
	return d;
}

static struct ferry_mock_host *host_of(struct ferry_device *dev, int *nic_fn, int *nvme_fn)
{
	struct ferry_mock_host *h;
	cr_assert_eq(ferry_mock_host_attach(dev, &h), 0);
	if (nic_fn)
		*nic_fn = ferry_mock_host_fn_lookup(h, "nic");
	if (nvme_fn)
		*nvme_fn = ferry_mock_host_fn_lookup(h, "nvme");
	return h;
}

Test(mock_rdma_mem, reg_mem_through_nic_function, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	int nicf;
	struct ferry_mock_host *h = host_of(t.sd, &nicf, NULL);
	struct ferry_memdomain *nic = domain_of(t.sd, "nic");
	/* Host pages 3..8: 3 and 8 are canaries (never mapped for the NIC), 4..7 at IOVA 0x10000. */
	uint8_t *hm = ferry_mock_host_ptr(h, 3 * PG, 6 * PG);
	cr_assert_not_null(hm);
	memset(hm, 0xca, 6 * PG);
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)nicf, 0x10000, 4 * PG, 4 * PG, RT_RW),
		     0);
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)nicf, 0x20000, 20 * PG, PG,
					       FERRY_MOCK_IOMMU_READ),
		     0);
	struct ferry_hal_rdma_mr *mr, *m2;
	struct ferry_hal_rdma_mr_keys k;
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, nic, 0x10000, 4 * PG,
				       FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE |
					       FERRY_HAL_RDMA_ACCESS_REMOTE_READ,
				       &mr),
		     0);
	t.ops->mr_keys(mr, &k);
	cr_assert_eq(k.addr, 0x10000);
	cr_assert_eq(k.len, 4 * PG);

	/* Registration checks. */
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, nic, 0x10000, 4 * PG + 1, 0, &m2), -EFAULT);
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, nic, 0x30000, PG, 0, &m2), -EFAULT);
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, nic, 0x20000, PG, FERRY_HAL_RDMA_ACCESS_REMOTE_WRITE,
				       &m2),
		     -EFAULT, "read-only page registered for writing");
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, nic, 0x20000, PG, FERRY_HAL_RDMA_ACCESS_REMOTE_READ,
				       &m2),
		     0);
	t.ops->mr_dereg(m2);
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, domain_of(t.sd, "nvme"), 0x10000, PG, 0, &m2), -EXDEV);
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, ferry_memdomain_system(), 0x10000, PG, 0, &m2),
		     -EXDEV);
	cr_assert_eq(t.ops->mr_reg_mem(t.sd, domain_of(t.cd, "nic"), 0x10000, PG, 0, &m2), -EXDEV,
		     "another device's function");

	/* A WRITE of the whole region from 2 SGEs lands in host pages 4..7 only. */
	struct rt_buf loc, back;
	rt_buf(&t, t.cd, &loc, 4 * PG, 0, 11);
	rt_buf(&t, t.cd, &back, 4 * PG, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	struct ferry_hal_rdma_sge ws[2] = {rt_sge(&loc, 0, 5000),
					   rt_sge(&loc, 5000, 4 * PG - 5000)};
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_WRITE, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      ws, 2, 0x10000, k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 1, FERRY_HAL_RDMA_OP_WRITE, 0);
	cr_assert_eq(memcmp(hm + PG, loc.p, 4 * PG), 0);
	for (size_t i = 0; i < PG; i++) {
		cr_assert_eq(hm[i], 0xca, "canary page before, byte %zu", i);
		cr_assert_eq(hm[5 * PG + i], 0xca, "canary page after, byte %zu", i);
	}
	/* READ two pages from the middle. */
	memset(back.p, 0, back.len);
	struct ferry_hal_rdma_sge bs = rt_sge(&back, 0, 2 * PG);
	cr_assert_eq(rt_post1(&t, t.cqp, 2, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &bs, 1, 0x11000, k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 2, FERRY_HAL_RDMA_OP_READ, 0);
	cr_assert_eq(memcmp(back.p, loc.p + PG, 2 * PG), 0);
	/* Past the region (into the canary's IOVA): refused. */
	cr_assert_eq(rt_post1(&t, t.cqp, 3, FERRY_HAL_RDMA_OP_WRITE, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      ws, 1, 0x10000 + 4 * PG - 100, k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 3, 0, -EREMOTEIO);
	for (size_t i = 0; i < PG; i++)
		cr_assert_eq(hm[5 * PG + i], 0xca, "canary page after, byte %zu", i);
	t.ops->qp_destroy(t.cqp);
	t.ops->qp_destroy(t.sqp);
	t.cqp = t.sqp = NULL;

	/* The host unmaps page 2 of the region after registration: the next WRITE fails at
	 * the peer and moves no byte (the whole range is checked at access time). */
	rt_connect(&t);
	uint8_t snap[4 * PG];
	memcpy(snap, hm + PG, sizeof(snap));
	cr_assert_eq(ferry_mock_host_iommu_unmap(h, (unsigned)nicf, 0x12000, PG), 0);
	rt_fill(loc.p, loc.len, 99);
	cr_assert_eq(rt_post1(&t, t.cqp, 4, FERRY_HAL_RDMA_OP_WRITE, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      ws, 2, 0x10000, k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 4, 0, -EREMOTEIO);
	cr_assert_eq(memcmp(hm + PG, snap, sizeof(snap)), 0, "nothing written");
	cr_assert_eq(rt_until_error(&t, t.sqp), -ECONNRESET);
	t.ops->qp_destroy(t.cqp);
	t.ops->qp_destroy(t.sqp);
	t.cqp = t.sqp = NULL;
	/* A READ of the pages still mapped still works. */
	rt_connect(&t);
	cr_assert_eq(rt_post1(&t, t.cqp, 5, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &bs, 1, 0x10000, k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 5, FERRY_HAL_RDMA_OP_READ, 0);
	cr_assert_eq(memcmp(back.p, snap, 2 * PG), 0);

	t.ops->mr_dereg(mr);
	rt_buf_free(&t, &loc);
	rt_buf_free(&t, &back);
	ferry_mock_host_close(h);
	rt_close(&t);
}

Test(mock_rdma_mem, read_lands_in_host_memory, .timeout = 30)
{
	struct rt t;
	rt_open(&t, "");
	rt_connect(&t);
	int nicf;
	struct ferry_mock_host *h = host_of(t.cd, &nicf, NULL);
	struct ferry_memdomain *nic = domain_of(t.cd, "nic");
	/* Client IOVA 0..2 pages -> host pages 9 and 7 (not adjacent). */
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)nicf, 0, 9 * PG, PG, RT_RW), 0);
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)nicf, PG, 7 * PG, PG, RT_RW), 0);
	uint8_t *p9 = ferry_mock_host_ptr(h, 9 * PG, PG), *p7 = ferry_mock_host_ptr(h, 7 * PG, PG),
		*p8 = ferry_mock_host_ptr(h, 8 * PG, PG);
	memset(p8, 0xcb, PG);
	struct ferry_hal_rdma_mr *mr;
	cr_assert_eq(t.ops->mr_reg_mem(t.cd, nic, 0, 2 * PG, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE,
				       &mr),
		     0);
	struct ferry_hal_rdma_mr_keys k;
	t.ops->mr_keys(mr, &k);
	struct rt_buf rem;
	rt_buf(&t, t.sd, &rem, 2 * PG, RT_ALL, 21);
	struct ferry_hal_rdma_sge s = {.addr = 100, .len = 2 * PG - 200, .lkey = k.lkey};
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &s, 1, rem.k.addr, rem.k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 1, FERRY_HAL_RDMA_OP_READ, 0);
	cr_assert_eq(memcmp(p9 + 100, rem.p, PG - 100), 0);
	cr_assert_eq(memcmp(p7, rem.p + PG - 100, PG - 100), 0);
	for (size_t i = 0; i < PG; i++)
		cr_assert_eq(p8[i], 0xcb, "host page 8 (between) written at %zu", i);
	/* The SEND source is host memory too; then the page goes away: -EIO locally. */
	cr_assert_eq(ferry_mock_host_iommu_unmap(h, (unsigned)nicf, PG, PG), 0);
	cr_assert_eq(rt_post1(&t, t.cqp, 2, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &s, 1, rem.k.addr, rem.k.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 2, 0, -EIO);
	t.ops->mr_dereg(mr);
	rt_buf_free(&t, &rem);
	ferry_mock_host_close(h);
	rt_close(&t);
}

Test(mock_rdma_mem, export_local_and_map_gen, .timeout = 30)
{
	struct ferry_device *dev;
	cr_assert_eq(ferry_device_open("mock", "", &dev), 0);
	int nvf;
	struct ferry_mock_host *h = host_of(dev, NULL, &nvf);
	struct ferry_memdomain *d = domain_of(dev, "nvme");
	uint64_t g0 = ferry_memdomain_map_gen(d);
	/* IOVA pages 0,1 -> host 1,2 (adjacent: one segment); 2 -> host 9; 3 -> host 10 RO. */
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)nvf, 0, PG, 2 * PG, RT_RW), 0);
	uint64_t g1 = ferry_memdomain_map_gen(d);
	cr_assert_neq(g1, g0, "a map changes the generation");
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)nvf, 2 * PG, 9 * PG, PG, RT_RW), 0);
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)nvf, 3 * PG, 10 * PG, PG,
					       FERRY_MOCK_IOMMU_READ),
		     0);
	uint64_t g2 = ferry_memdomain_map_gen(d);
	cr_assert_neq(g2, g1);
	cr_assert_eq(ferry_memdomain_map_gen(domain_of(dev, "nic")), 0, "other function unchanged");
	int fd;
	cr_assert_eq(ferry_mock_host_fd(dev, &fd), 0);

	struct iovec iov = {.iov_base = (void *)(uintptr_t)0x800, .iov_len = 2 * PG};
	struct ferry_mem m = {.domain = d, .iov = &iov, .iovcnt = 1};
	struct ferry_mem_backing b[4];
	uint32_t n = 4;
	cr_assert_eq(ferry_memdomain_export_local(&m, FERRY_MEM_EXPORT_F_WRITE, b, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(b[0].len, 2 * PG - 0x800);
	cr_assert_eq(b[1].len, 0x800);
	cr_assert_eq(b[0].fd, fd);
	cr_assert_eq(b[1].fd, fd);
	cr_assert_eq((uint8_t *)b[0].local + b[0].len == b[1].local, 0, "host pages 3 and 9 apart");
	/* The local pointers and fd offsets name the host's bytes. */
	uint8_t *h1 = ferry_mock_host_ptr(h, PG, 2 * PG), *h9 = ferry_mock_host_ptr(h, 9 * PG, PG);
	rt_fill(h1, 2 * PG, 4);
	rt_fill(h9, PG, 5);
	cr_assert_eq(memcmp(b[0].local, h1 + 0x800, b[0].len), 0);
	cr_assert_eq(memcmp(b[1].local, h9, b[1].len), 0);
	uint8_t tmp[PG];
	cr_assert_eq(pread(fd, tmp, 0x800, (off_t)b[1].fd_off), 0x800);
	cr_assert_eq(memcmp(tmp, h9, 0x800), 0);
	cr_assert_eq(pread(fd, tmp, 16, (off_t)b[0].fd_off), 16);
	cr_assert_eq(memcmp(tmp, h1 + 0x800, 16), 0);

	/* Too small an output; unmapped; read-only for writing; two iovecs. */
	n = 1;
	cr_assert_eq(ferry_memdomain_export_local(&m, FERRY_MEM_EXPORT_F_WRITE, b, &n), -ENOBUFS);
	cr_assert_eq(n, 2);
	iov.iov_base = (void *)(uintptr_t)(3 * PG);
	iov.iov_len = PG;
	n = 4;
	cr_assert_eq(ferry_memdomain_export_local(&m, FERRY_MEM_EXPORT_F_WRITE, b, &n), -EFAULT);
	cr_assert_eq(ferry_memdomain_export_local(&m, 0, b, &n), 0);
	cr_assert_eq(n, 1);
	iov.iov_base = (void *)(uintptr_t)(3 * PG);
	iov.iov_len = 2 * PG; /* page 4 is not mapped */
	n = 4;
	cr_assert_eq(ferry_memdomain_export_local(&m, 0, b, &n), -EFAULT);
	iov.iov_base = (void *)(uintptr_t)(64ull << 20);
	iov.iov_len = PG; /* outside the IOVA space */
	cr_assert_eq(ferry_memdomain_export_local(&m, 0, b, &n), -EFAULT);
	struct iovec two[2] = {{(void *)(uintptr_t)(PG + 16), 16},
			       {(void *)(uintptr_t)(PG + 100), 32}};
	struct ferry_mem m2 = {.domain = d, .iov = two, .iovcnt = 2};
	n = 4;
	cr_assert_eq(ferry_memdomain_export_local(&m2, 0, b, &n), 0);
	cr_assert_eq(n, 2, "not adjacent in host RAM: two segments");
	cr_assert_eq(b[0].len, 16);
	cr_assert_eq(b[1].len, 32);

	/* Unmap changes the generation; so does a map by a forked host process. */
	cr_assert_eq(ferry_mock_host_iommu_unmap(h, (unsigned)nvf, 2 * PG, PG), 0);
	uint64_t g3 = ferry_memdomain_map_gen(d);
	cr_assert_neq(g3, g2, "an unmap changes the generation");
	iov.iov_base = (void *)(uintptr_t)(2 * PG);
	iov.iov_len = 16;
	cr_assert_eq(ferry_memdomain_export_local(&m, 0, b, &n), -EFAULT, "unmapped now");
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ferry_mock_host *ch;
		int ok = ferry_mock_host_open(fd, &ch) == 0 &&
			 ferry_mock_host_iommu_map(ch, (unsigned)nvf, 2 * PG, 11 * PG, PG, RT_RW) ==
				 0;
		_exit(ok ? 0 : 1);
	}
	int ws;
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	cr_assert_neq(ferry_memdomain_map_gen(d), g3, "the host process's map is seen");
	cr_assert_eq(ferry_memdomain_export_local(&m, 0, b, &n), 0);
	cr_assert_eq(memcmp(b[0].local, ferry_mock_host_ptr(h, 11 * PG, 16), 16), 0);
	ferry_mock_host_close(h);
	ferry_device_close(dev);
}

/* ---- a target in a child process -------------------------------------------------------- */

struct tgt_pdata {
	uint64_t addr;
	uint32_t rkey;
	uint32_t len;
};

#define TGT_LEN (64u * 1024u)

/* The child: accepts one connection, hands out a 64 KiB region in the accept's private
 * data, echoes every SEND back with its first byte + 1, ends at a 1-byte message. Exit 0 if
 * everything went as expected. */
static int child_target(int wfd)
{
	struct ferry_device *dev;
	if (ferry_device_open("mock", "", &dev))
		return 10;
	const struct ferry_hal_rdma_ops *ops = ferry_hal_dev_get_backend(dev)->nic->rdma;
	struct ferry_hal_rdma_listener *l;
	struct ferry_hal_rdma_cq *cq;
	char addr[64] = {0};
	if (ops->listen(dev, "127.0.0.1:0", 4, &l) || ops->listener_addr(l, addr, sizeof(addr)) ||
	    ops->cq_create(dev, 64, &cq))
		return 11;
	if (write(wfd, addr, sizeof(addr)) != (ssize_t)sizeof(addr))
		return 12;
	static uint8_t region[TGT_LEN], rx[4][256], tx[256];
	struct ferry_hal_rdma_mr *mr, *rmr, *tmr;
	if (ops->mr_reg(dev, region, sizeof(region), RT_ALL, &mr) ||
	    ops->mr_reg(dev, rx, sizeof(rx), FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, &rmr) ||
	    ops->mr_reg(dev, tx, sizeof(tx), 0, &tmr))
		return 13;
	struct ferry_hal_rdma_mr_keys k, rk, tk;
	ops->mr_keys(mr, &k);
	ops->mr_keys(rmr, &rk);
	ops->mr_keys(tmr, &tk);
	struct ferry_hal_rdma_req *req = NULL;
	uint64_t end = test_rdma_now_ms() + 10000;
	while (ops->get_request(l, &req, NULL, NULL) == -EAGAIN)
		if (test_rdma_now_ms() > end)
			return 14;
	struct ferry_hal_rdma_qp_attr a = rt_attr(cq, NULL);
	struct ferry_hal_rdma_qp *qp;
	struct tgt_pdata pd = {.addr = k.addr, .rkey = k.rkey, .len = TGT_LEN};
	if (ops->accept(req, &a, &pd, sizeof(pd), &qp))
		return 15;
	for (uint64_t i = 0; i < 4; i++) {
		struct ferry_hal_rdma_sge s = {.addr = rk.addr + i * 256,
					       .len = 256,
					       .lkey = rk.lkey};
		if (ops->post_recv(qp, i, &s, 1))
			return 16;
	}
	for (;;) {
		struct ferry_hal_rdma_wc wc;
		if (test_rdma_now_ms() > end)
			return 17;
		int n = ops->cq_poll(cq, &wc, 1);
		if (n < 0)
			return 18;
		if (n == 0) {
			(void)ops->cq_wait(cq, 1000);
			continue;
		}
		if (wc.status) {
			fprintf(stderr, "target: wr 0x%llx opcode %u status %d\n",
				(unsigned long long)wc.wr_id, wc.opcode, wc.status);
			return 19;
		}
		if (wc.opcode == FERRY_HAL_RDMA_OP_SEND)
			continue;
		if (wc.opcode != FERRY_HAL_RDMA_OP_RECV)
			return 20;
		uint8_t *m = rx[wc.wr_id];
		if (wc.byte_len == 1)
			break;
		memcpy(tx, m, wc.byte_len);
		tx[0]++;
		struct ferry_hal_rdma_sge ts = {.addr = tk.addr,
						.len = wc.byte_len,
						.lkey = tk.lkey};
		struct ferry_hal_rdma_sge s = {.addr = rk.addr + wc.wr_id * 256,
					       .len = 256,
					       .lkey = rk.lkey};
		struct ferry_hal_rdma_wr w = {.wr_id = 100,
					      .opcode = FERRY_HAL_RDMA_OP_SEND,
					      .flags = FERRY_HAL_RDMA_WR_F_SIGNALED,
					      .sge = &ts,
					      .nsge = 1};
		if (ops->post_recv(qp, wc.wr_id, &s, 1) || ops->post_send(qp, &w, NULL))
			return 21;
	}
	/* The parent wrote the region with its pattern: check it here too. */
	uint8_t want[TGT_LEN];
	rt_fill(want, sizeof(want), 77);
	int rc = memcmp(region, want, sizeof(want)) ? 22 : 0;
	ops->qp_destroy(qp);
	ops->mr_dereg(mr);
	ops->mr_dereg(rmr);
	ops->mr_dereg(tmr);
	ops->cq_destroy(cq);
	ops->listener_close(l);
	ferry_device_close(dev);
	return rc;
}

Test(mock_rdma_mem, target_in_child_process, .timeout = 60)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork(); /* before opening any device */
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		_exit(child_target(p[1]));
	}
	close(p[1]);
	char addr[64];
	cr_assert_eq(read(p[0], addr, sizeof(addr)), (ssize_t)sizeof(addr));
	close(p[0]);

	struct rt t;
	memset(&t, 0, sizeof(t));
	cr_assert_eq(ferry_device_open("mock", "", &t.cd), 0);
	t.ops = ferry_hal_dev_get_backend(t.cd)->nic->rdma;
	cr_assert_eq(t.ops->cq_create(t.cd, 64, &t.ccq), 0);
	struct ferry_hal_rdma_qp_attr a = rt_attr(t.ccq, &t.cctx);
	cr_assert_eq(t.ops->connect(t.cd, addr, &a, "nqn", 3, 5000, &t.cqp), 0);
	const void *pdv;
	uint32_t pl;
	cr_assert_eq(rt_cstate(&t, &pdv, &pl), 0);
	cr_assert_eq(pl, sizeof(struct tgt_pdata));
	struct tgt_pdata pd;
	memcpy(&pd, pdv, sizeof(pd));
	cr_assert_eq(pd.len, TGT_LEN);

	struct rt_buf loc, back, rx, tx;
	rt_buf(&t, t.cd, &loc, TGT_LEN, 0, 77);
	rt_buf(&t, t.cd, &back, TGT_LEN, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	rt_buf(&t, t.cd, &rx, 256, FERRY_HAL_RDMA_ACCESS_LOCAL_WRITE, 0);
	rt_buf(&t, t.cd, &tx, 256, 0, 3);
	struct ferry_hal_rdma_sge ls[2] = {rt_sge(&loc, 0, 10000),
					   rt_sge(&loc, 10000, TGT_LEN - 10000)};
	cr_assert_eq(rt_post1(&t, t.cqp, 1, FERRY_HAL_RDMA_OP_WRITE, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      ls, 2, pd.addr, pd.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 1, FERRY_HAL_RDMA_OP_WRITE, 0);
	struct ferry_hal_rdma_sge bs = rt_sge(&back, 0, TGT_LEN);
	cr_assert_eq(rt_post1(&t, t.cqp, 2, FERRY_HAL_RDMA_OP_READ, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &bs, 1, pd.addr, pd.rkey),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 2, FERRY_HAL_RDMA_OP_READ, 0);
	cr_assert_eq(memcmp(back.p, loc.p, TGT_LEN), 0);
	/* Echo: three messages. */
	for (int i = 0; i < 3; i++) {
		struct ferry_hal_rdma_sge rs = rt_sge(&rx, 0, 256), ts = rt_sge(&tx, 0, 100 + i);
		tx.p[0] = (uint8_t)(10 * i);
		cr_assert_eq(t.ops->post_recv(t.cqp, 50 + i, &rs, 1), 0);
		cr_assert_eq(rt_post1(&t, t.cqp, 10 + i, FERRY_HAL_RDMA_OP_SEND,
				      FERRY_HAL_RDMA_WR_F_SIGNALED, &ts, 1, 0, 0),
			     0);
		struct ferry_hal_rdma_wc w1 = rt_wc(&t, t.ccq), w2 = rt_wc(&t, t.ccq);
		struct ferry_hal_rdma_wc r = w1.opcode == FERRY_HAL_RDMA_OP_RECV ? w1 : w2;
		rt_expect(r, 50 + i, FERRY_HAL_RDMA_OP_RECV, 0);
		cr_assert_eq(r.byte_len, (uint32_t)(100 + i));
		cr_assert_eq(rx.p[0], (uint8_t)(10 * i + 1));
		cr_assert_eq(memcmp(rx.p + 1, tx.p + 1, 99 + i), 0);
	}
	struct ferry_hal_rdma_sge end = rt_sge(&tx, 0, 1);
	cr_assert_eq(rt_post1(&t, t.cqp, 99, FERRY_HAL_RDMA_OP_SEND, FERRY_HAL_RDMA_WR_F_SIGNALED,
			      &end, 1, 0, 0),
		     0);
	rt_expect(rt_wc(&t, t.ccq), 99, FERRY_HAL_RDMA_OP_SEND, 0);
	int ws;
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	cr_assert(WIFEXITED(ws), "the target died");
	cr_assert_eq(WEXITSTATUS(ws), 0, "the target failed at step %d", WEXITSTATUS(ws));
	cr_assert_eq(rt_until_error(&t, t.cqp), -ECONNRESET, "the target's QP is gone");
	rt_buf_free(&t, &loc);
	rt_buf_free(&t, &back);
	rt_buf_free(&t, &rx);
	rt_buf_free(&t, &tx);
	rt_close(&t);
}
