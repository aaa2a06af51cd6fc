/*
 * The mock offload NIC (backends/mock/mock_nic*.c) at the HAL level on loopback sockets:
 * query, limits and domains (and the ddp=0 and argument variants); C2HData placement into
 * system memory (the iovecs themselves, and a separate mapping with APART destinations whose
 * iovecs stay untouched) and into host memory through the "nic" function's IOMMU (translated
 * from "mockN.nvme"), with canaries around the mapping that a PDU leaving it does not reach;
 * ddp_setup refusals (-EFAULT unmapped / read-only page, -EXDEV, -EINVAL, -EBUSY); a page
 * unmapped after setup; asynchronous teardown (exactly once, only from group_poll of the
 * socket's group, queue_del or close); header digests without data digests; the counters.
 */
#include "test_mock_nic_util.h"

#define TM_PAGE 4096u
#define TM_RW (FERRY_MOCK_IOMMU_READ | FERRY_MOCK_IOMMU_WRITE)

static struct ferry_memdomain *domain_of(struct ferry_device *dev, const char *fn)
{
	char name[96];
	snprintf(name, sizeof(name), "%s.%s", ferry_device_get_name(dev), fn);
	struct ferry_memdomain *d = ferry_memdomain_lookup(name);
	cr_assert_not_null(d, "no domain %s", name);
	return d;
}

Test(mock_nic, query_args_domains, .timeout = 30)
{
	struct ferry_device *dev;
	struct ferry_hal_nic_info info;
	cr_assert_eq(ferry_device_open("mock", "", &dev), 0);
	const struct ferry_hal_nic_ops *nic = ferry_hal_dev_get_backend(dev)->nic;
	cr_assert_eq(nic->abi_version, FERRY_HAL_NIC_ABI_VERSION);
	memset(&info, 0, sizeof(info));
	cr_assert_eq(nic->query(dev, &info), 0);
	cr_assert_eq(info.caps, FERRY_HAL_NIC_CAP_TCP | FERRY_HAL_NIC_CAP_DDP |
					FERRY_HAL_NIC_CAP_DDP_CRC | FERRY_HAL_NIC_CAP_RDMA);
	cr_assert_eq(info.ddp_max_sges, 64);
	cr_assert_eq(info.ddp_max_io, 1u << 20);
	cr_assert_geq(info.max_recv_iov, 16);
	cr_assert_eq(info.ddp_ndomains, 2);
	cr_assert_eq(info.ddp_domains[0], ferry_memdomain_system());
	cr_assert_eq(info.ddp_domains[1], domain_of(dev, "nic"));
	ferry_device_close(dev);

	cr_assert_eq(ferry_device_open("mock", "ddp_max_sges=4,ddp_max_io=64K,functions=nvme",
				       &dev),
		     0);
	cr_assert_eq(nic->query(dev, &info), 0);
	cr_assert_eq(info.ddp_max_sges, 4);
	cr_assert_eq(info.ddp_max_io, 65536);
	cr_assert_eq(info.ddp_ndomains, 1, "no nic function: system memory only");
	ferry_device_close(dev);

	const char *bad[] = {"ddp=2",          "ddp_max_sges=0",  "ddp_max_sges=65",
			     "ddp_max_io=2M",  "ddp_max_io=100",  "nic_pkt=10",
			     "nic_pkt=100000", "lie_ppm=1000001", "place_miss_ppm=x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ferry_device_open("mock", bad[i], &dev), -EINVAL, "%s", bad[i]);

	/* ddp=0: a TCP NIC; queues refuse the offload (the queue runs in software). */
	struct nt t;
	nt_open(&t, "ddp=0");
	cr_assert_eq(t.nic->query(t.dev, &info), 0);
	cr_assert_eq(info.caps, FERRY_HAL_NIC_CAP_TCP | FERRY_HAL_NIC_CAP_RDMA);
	cr_assert_eq(info.ddp_ndomains, 0);
	cr_assert_eq(nt_handshake(&t, 0, 1), -ENOTSUP);
	cr_assert_eq(nt_stats(&t).queue_add_fail, 1);
	nt_close(&t);
}

Test(mock_nic, queue_add_checks, .timeout = 30)
{
	struct nt t;
	nt_open(&t, "");
	nt_connect(&t);
	struct ferry_hal_ddp_queue_cfg cfg = {.size = sizeof(cfg),
					      .ddgst = 1,
					      .queue_size = 8,
					      .resync = nt_resync_cb,
					      .ctx = &t};
	struct ferry_hal_ddp_queue_cfg c = cfg;
	c.size--;
	cr_assert_eq(t.nic->ddp_queue_add(t.c, &c), -EINVAL, "size");
	c = cfg;
	c.resync = NULL;
	cr_assert_eq(t.nic->ddp_queue_add(t.c, &c), -EINVAL, "no resync callback");
	c = cfg;
	c.pfv = 1;
	cr_assert_eq(t.nic->ddp_queue_add(t.c, &c), -EINVAL, "pfv");
	c = cfg;
	c.rx_seq = 128;
	cr_assert_eq(t.nic->ddp_queue_add(t.c, &c), -EINVAL, "rx_seq beyond what was received");
	cr_assert_eq(t.nic->ddp_queue_add(t.l, &cfg), -EINVAL, "a listener");
	cr_assert_eq(t.nic->ddp_queue_add(t.c, &cfg), 0);
	cr_assert_eq(t.nic->ddp_queue_add(t.c, &cfg), -EINVAL, "twice");
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.queue_add, 1);
	cr_assert_eq(st.queue_add_fail, 5, "the listener has no NIC state to count in");
	t.nic->ddp_queue_del(t.c);
	t.nic->ddp_queue_del(t.c); /* no-op */
	cr_assert_eq(nt_stats(&t).queue_del, 1);
	nt_close(&t);
}

/* Placement into the iovecs themselves (system memory, "same memory"), over many packets. */
Test(mock_nic, place_system_same_memory, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "nic_pkt=1000", 0, 1);
	static uint8_t data[12288], buf[12288];
	memset(buf, 0xee, sizeof(buf));
	struct nt_stream s = {0};
	nt_read(&t, &s, 1, data, buf, buf, sizeof(buf), 0, 7, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(t.evs[i].type, FERRY_NVME_TCP_C2H_DATA);
		cr_assert(t.evs[i].ev.all_placed, "PDU %d placed", i);
		cr_assert(t.evs[i].ev.all_crc_ok, "PDU %d digest verified by the NIC", i);
		cr_assert_not(t.evs[i].ev.ddgst_error);
	}
	cr_assert_eq(t.evs[3].type, FERRY_NVME_TCP_CAPSULE_RESP);
	cr_assert_arr_eq(buf, data, sizeof(buf));
	cr_assert_eq(t.rx.stats.crc_bytes, 0, "no software CRC");
	cr_assert_eq(t.rx.stats.placed_bytes, sizeof(data));
	cr_assert_eq(t.flag_bytes[FERRY_HAL_NIC_RX_F_PLACED | FERRY_HAL_NIC_RX_F_CRC_OK],
		     sizeof(data));
	cr_assert_eq(t.flag_bytes[FERRY_HAL_NIC_RX_F_CRC_OK], 12, "the 3 digests");
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.setup, 1);
	cr_assert_eq(st.offloaded_bytes, sizeof(data));
	cr_assert_eq(st.crc_bytes, sizeof(data));
	cr_assert_eq(st.drop, 0);
	cr_assert_eq(st.bytes, s.len);
	cr_assert_geq(st.packets, (s.len + 999) / 1000);
	cr_assert_eq(st.resync, 0);
	nt_down(&t, &s);
}

/* A mapping apart from the iovecs: the iovecs get no placed byte. */
Test(mock_nic, place_system_apart, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "", 1, 1);
	static uint8_t data[8192], map[8192], fb[8192];
	nt_fill(data, sizeof(data), 9);
	memset(map, 0, sizeof(map));
	memset(fb, 0xee, sizeof(fb));
	t.dest[2] = (struct nt_dest){fb, sizeof(fb), FERRY_NVME_TCP_RX_DEST_F_APART};
	struct iovec v[2] = {{map, 5000}, {map + 5000, 3192}};
	struct ferry_mem m = {.iov = v, .iovcnt = 2};
	cr_assert_eq(t.nic->ddp_setup(t.c, 2, &m), 0);
	struct nt_stream s = {0};
	nt_cmd(&t, &s, 2, data, 1, 8192, -1);
	nt_exchange(&t, &s, 2);
	cr_assert(t.evs[0].ev.all_placed);
	cr_assert(t.evs[0].ev.all_crc_ok);
	cr_assert_not(t.evs[0].ev.crc_deferred);
	cr_assert_arr_eq(map, data, sizeof(map));
	for (size_t i = 0; i < sizeof(fb); i++)
		cr_assert_eq(fb[i], 0xee, "iovec byte %zu written", i);
	nt_down(&t, &s);
}

/*
 * Host memory: host pages 20..23 hold the I/O, pages 19 and 24 are canaries, all mapped
 * writable for both functions. The destination is given in the nvme function's view and
 * translated to the nic function's. The second PDU leaves the mapping by 100 bytes: those are
 * delivered into the iovecs, counted as dropped, and the canary page stays intact.
 */
Test(mock_nic, place_host_memory_bounds, .timeout = 30)
{
	struct nt t;
	nt_open(&t, "host_mem=1M,iova_size=2M,nic_pkt=1500");
	struct ferry_mock_host *h;
	cr_assert_eq(ferry_mock_host_attach(t.dev, &h), 0);
	int fnvme = ferry_mock_host_fn_lookup(h, "nvme"),
	    fnic = ferry_mock_host_fn_lookup(h, "nic");
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)fnvme, 100 * TM_PAGE, 19 * TM_PAGE,
					       6 * TM_PAGE, TM_RW),
		     0);
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)fnic, 300 * TM_PAGE, 19 * TM_PAGE,
					       6 * TM_PAGE, TM_RW),
		     0);
	uint8_t *hm = ferry_mock_host_ptr(h, 19 * TM_PAGE, 6 * TM_PAGE);
	memset(hm, 0xc5, 6 * TM_PAGE);

	cr_assert_eq(nt_handshake(&t, 0, 1), 0);
	struct iovec nv = {(void *)(uintptr_t)(101 * TM_PAGE), 4 * TM_PAGE}, tv[4];
	struct ferry_mem src = {.domain = domain_of(t.dev, "nvme"), .iov = &nv, .iovcnt = 1};
	struct ferry_mem dst = {.iov = tv, .iovcnt = 4};
	cr_assert_eq(ferry_memdomain_translate(&src, domain_of(t.dev, "nic"), &dst), 0);
	cr_assert_eq(dst.domain, domain_of(t.dev, "nic"));
	cr_assert_eq(t.nic->ddp_setup(t.c, 4, &dst), 0);

	static uint8_t data[16484], fb[16484];
	nt_fill(data, sizeof(data), 11);
	memset(fb, 0xee, sizeof(fb));
	t.dest[4] = (struct nt_dest){fb, sizeof(fb), FERRY_NVME_TCP_RX_DEST_F_APART};
	struct nt_stream s = {0};
	nt_c2h(&t, &s, 4, 0, data, 8192, 0, 0);
	nt_c2h(&t, &s, 4, 8192, data + 8192, 8292, 1, 0);
	nt_resp(&t, &s, 4);
	nt_exchange(&t, &s, 3);
	cr_assert(t.evs[0].ev.all_placed);
	cr_assert(t.evs[0].ev.all_crc_ok);
	cr_assert_not(t.evs[1].ev.all_placed, "the bytes past the mapping were not placed");
	cr_assert(t.evs[1].ev.all_crc_ok, "the NIC still verified the digest");
	cr_assert_arr_eq(hm + TM_PAGE, data, 4 * TM_PAGE, "the I/O landed in host memory");
	for (size_t i = 0; i < TM_PAGE; i++) {
		cr_assert_eq(hm[i], 0xc5, "canary before the mapping, byte %zu", i);
		cr_assert_eq(hm[5 * TM_PAGE + i], 0xc5, "canary after the mapping, byte %zu", i);
	}
	cr_assert_arr_eq(fb + 16384, data + 16384, 100, "the excess went to the iovecs");
	for (size_t i = 0; i < 16384; i++)
		cr_assert_eq(fb[i], 0xee, "placed byte %zu copied into the iovecs", i);
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.offloaded_bytes, 16384);
	cr_assert_eq(st.drop, 100);
	cr_assert_eq(st.crc_bytes, 16484);
	free(s.b);
	ferry_mock_host_close(h);
	nt_close(&t);
}

Test(mock_nic, setup_refusals, .timeout = 30)
{
	struct nt t;
	nt_open(&t, "host_mem=1M,iova_size=1M,ddp_max_sges=4,ddp_max_io=64K");
	static uint8_t buf[65536 + 16];
	cr_assert_eq(nt_handshake(&t, 0, 1), 0);
	struct ferry_mock_host *h;
	cr_assert_eq(ferry_mock_host_attach(t.dev, &h), 0);
	int fnic = ferry_mock_host_fn_lookup(h, "nic");
	/* nic IOVA pages 10, 11 writable, 12 read-only, 13 unmapped */
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)fnic, 10 * TM_PAGE, 0, 2 * TM_PAGE,
					       TM_RW),
		     0);
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)fnic, 12 * TM_PAGE, 2 * TM_PAGE,
					       TM_PAGE, FERRY_MOCK_IOMMU_READ),
		     0);
	struct ferry_memdomain *dnic = domain_of(t.dev, "nic");
	struct iovec v = {(void *)(uintptr_t)(10 * TM_PAGE), 2 * TM_PAGE};
	struct ferry_mem m = {.domain = dnic, .iov = &v, .iovcnt = 1};
	cr_assert_eq(t.nic->ddp_setup(t.c, 1, &m), 0, "two writable pages");
	cr_assert_eq(t.nic->ddp_setup(t.c, 1, &m), -EBUSY, "cid mapped");
	v.iov_len = 3 * TM_PAGE;
	cr_assert_eq(t.nic->ddp_setup(t.c, 2, &m), -EFAULT, "read-only page");
	v.iov_base = (void *)(uintptr_t)(11 * TM_PAGE + 100);
	v.iov_len = 2 * TM_PAGE;
	cr_assert_eq(t.nic->ddp_setup(t.c, 2, &m), -EFAULT, "read-only page, unaligned");
	v.iov_base = (void *)(uintptr_t)(13 * TM_PAGE);
	v.iov_len = 10;
	cr_assert_eq(t.nic->ddp_setup(t.c, 2, &m), -EFAULT, "unmapped page");
	m.domain = domain_of(t.dev, "nvme");
	v.iov_base = (void *)(uintptr_t)(10 * TM_PAGE);
	cr_assert_eq(t.nic->ddp_setup(t.c, 2, &m), -EXDEV, "a domain the NIC does not place into");

	struct iovec sv[5];
	for (int i = 0; i < 5; i++)
		sv[i] = (struct iovec){buf + i * 16, 16};
	struct ferry_mem sm = {.iov = sv, .iovcnt = 5};
	cr_assert_eq(t.nic->ddp_setup(t.c, 3, &sm), -EINVAL, "more than ddp_max_sges");
	sm.iovcnt = 4;
	cr_assert_eq(t.nic->ddp_setup(t.c, 3, &sm), 0, "ddp_max_sges");
	cr_assert_eq(nt_setup_sys(&t, 4, buf, 65536 + 1), -EINVAL, "more than ddp_max_io");
	cr_assert_eq(nt_setup_sys(&t, 4, buf, 65536), 0, "ddp_max_io");
	cr_assert_eq(nt_setup_sys(&t, 5, NULL, 16), -EINVAL, "NULL pointer");
	cr_assert_eq(t.nic->ddp_setup(t.c, 5, NULL), -EINVAL);
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.setup, 3);
	cr_assert_eq(st.setup_fail, 9);

	/* Not offloaded: every setup refused. */
	t.nic->ddp_queue_del(t.c);
	cr_assert_eq(nt_setup_sys(&t, 6, buf, 16), -EINVAL);
	cr_assert_eq(nt_stats(&t).teardown, 3, "queue_del released the three mappings");
	ferry_mock_host_close(h);
	nt_close(&t);
}

/* A page the NIC function loses after setup: those bytes are not placed, and not written. */
Test(mock_nic, page_unmapped_after_setup, .timeout = 30)
{
	struct nt t;
	nt_open(&t, "host_mem=1M,iova_size=1M");
	struct ferry_mock_host *h;
	cr_assert_eq(ferry_mock_host_attach(t.dev, &h), 0);
	int fnic = ferry_mock_host_fn_lookup(h, "nic");
	cr_assert_eq(ferry_mock_host_iommu_map(h, (unsigned)fnic, 0, 40 * TM_PAGE, 2 * TM_PAGE,
					       TM_RW),
		     0);
	uint8_t *hm = ferry_mock_host_ptr(h, 40 * TM_PAGE, 2 * TM_PAGE);
	memset(hm, 0x33, 2 * TM_PAGE);
	cr_assert_eq(nt_handshake(&t, 0, 1), 0);
	struct iovec v = {(void *)(uintptr_t)0, 2 * TM_PAGE};
	struct ferry_mem m = {.domain = domain_of(t.dev, "nic"), .iov = &v, .iovcnt = 1};
	cr_assert_eq(t.nic->ddp_setup(t.c, 7, &m), 0);
	cr_assert_eq(ferry_mock_host_iommu_unmap(h, (unsigned)fnic, TM_PAGE, TM_PAGE), 0);

	static uint8_t data[8192], fb[8192];
	nt_fill(data, sizeof(data), 13);
	memset(fb, 0xee, sizeof(fb));
	t.dest[7] = (struct nt_dest){fb, sizeof(fb), FERRY_NVME_TCP_RX_DEST_F_APART};
	struct nt_stream s = {0};
	nt_cmd(&t, &s, 7, data, 1, 8192, -1);
	nt_exchange(&t, &s, 2);
	cr_assert_not(t.evs[0].ev.all_placed);
	cr_assert_arr_eq(hm, data, TM_PAGE, "the mapped page got its bytes");
	for (size_t i = 0; i < TM_PAGE; i++)
		cr_assert_eq(hm[TM_PAGE + i], 0x33, "unmapped page written at %zu", i);
	cr_assert_arr_eq(fb + TM_PAGE, data + TM_PAGE, TM_PAGE, "the rest came in the iovecs");
	cr_assert_eq(nt_stats(&t).drop, TM_PAGE);
	cr_assert_eq(nt_stats(&t).offloaded_bytes, TM_PAGE);
	free(s.b);
	ferry_mock_host_close(h);
	nt_close(&t);
}

Test(mock_nic, teardown_async_once, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "", 0, 1);
	static uint8_t buf[4096];
	struct nt_td td = {0}, td2 = {0}, td3 = {0};
	struct ferry_hal_sock_event ev[8];
	struct ferry_hal_sock_group *other;
	cr_assert_eq(t.nic->group_create(t.dev, &other), 0);

	cr_assert_eq(t.nic->ddp_teardown(t.c, 3, nt_td_cb, &td), -ENOENT, "not mapped");
	cr_assert_eq(nt_setup_sys(&t, 3, buf, sizeof(buf)), 0);
	cr_assert_eq(t.nic->ddp_teardown(t.c, 3, nt_td_cb, &td), 0);
	cr_assert_eq(td.calls, 0, "never inside ddp_teardown");
	cr_assert_eq(t.nic->ddp_teardown(t.c, 3, nt_td_cb, &td), -ENOENT, "teardown pending");
	cr_assert_eq(nt_setup_sys(&t, 3, buf, sizeof(buf)), -EBUSY, "before the callback");
	cr_assert_geq(t.nic->group_poll(other, ev, 8, 0), 0);
	cr_assert_eq(td.calls, 0, "another group's poll does not complete it");
	uint64_t t0 = nt_now_ns();
	int n = t.nic->group_poll(t.g, ev, 8, 2000000);
	cr_assert_lt(nt_now_ns() - t0, 1000000000ull, "the poll did not sleep for 2 s");
	cr_assert_geq(n, 0);
	cr_assert_eq(td.calls, 1);
	cr_assert_eq(td.status, 0);
	(void)t.nic->group_poll(t.g, ev, 8, 0);
	cr_assert_eq(td.calls, 1, "exactly once");
	cr_assert_eq(nt_setup_sys(&t, 3, buf, sizeof(buf)), 0, "the cid is free again");

	/* queue_del completes pending teardowns, at once */
	cr_assert_eq(t.nic->ddp_teardown(t.c, 3, nt_td_cb, &td2), 0);
	cr_assert_eq(td2.calls, 0);
	t.nic->ddp_queue_del(t.c);
	cr_assert_eq(td2.calls, 1);
	(void)t.nic->group_poll(t.g, ev, 8, 0);
	cr_assert_eq(td2.calls, 1);

	/* close completes them too */
	struct ferry_hal_ddp_queue_cfg cfg = {.size = sizeof(cfg),
					      .ddgst = 1,
					      .queue_size = 4,
					      .rx_seq = ferry_nvme_tcp_rx_stream_pos(&t.rx),
					      .resync = nt_resync_cb,
					      .ctx = &t};
	cr_assert_eq(t.nic->ddp_queue_add(t.c, &cfg), 0);
	cr_assert_eq(nt_setup_sys(&t, 9, buf, sizeof(buf)), 0);
	cr_assert_eq(t.nic->ddp_teardown(t.c, 9, nt_td_cb, &td3), 0);
	cr_assert_eq(t.nic->group_remove(t.g, t.c), 0);
	t.nic->close(t.c);
	t.c = NULL;
	cr_assert_eq(td3.calls, 1);
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.setup, 3);
	cr_assert_eq(st.teardown, 3);
	cr_assert_eq(st.queue_add, 2);
	cr_assert_eq(st.queue_del, 2);
	t.nic->group_destroy(other);
	nt_close(&t);
}

/* Header digests without data digests: placement, never CRC_OK. */
Test(mock_nic, hdgst_no_ddgst, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "nic_pkt=700", 1, 0);
	static uint8_t data[6000], buf[6000];
	nt_fill(data, sizeof(data), 17);
	nt_map_sys(&t, 5, buf, buf, sizeof(buf), 0);
	struct nt_stream s = {0};
	nt_c2h(&t, &s, 5, 0, data, 1000, 0, 0);
	nt_c2h(&t, &s, 5, 1000, data + 1000, 5000, 1, 0);
	nt_resp(&t, &s, 5);
	nt_exchange(&t, &s, 3);
	cr_assert(t.evs[0].ev.all_placed);
	cr_assert(t.evs[1].ev.all_placed);
	cr_assert_not(t.evs[1].ev.all_crc_ok);
	cr_assert_arr_eq(buf, data, sizeof(buf));
	cr_assert_eq(t.flag_bytes[FERRY_HAL_NIC_RX_F_CRC_OK] +
			     t.flag_bytes[FERRY_HAL_NIC_RX_F_CRC_OK | FERRY_HAL_NIC_RX_F_PLACED],
		     0);
	cr_assert_eq(nt_stats(&t).crc_bytes, 0);
	nt_down(&t, &s);
}
