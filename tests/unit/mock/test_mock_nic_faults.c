/*
 * The mock offload NIC's fault model (ferry_mock_nic_faults, device arguments) at the HAL
 * level: placement misses (bytes in the iovecs, counted as dropped), CRC misses (software
 * verifies, crc_deferred for apart destinations), a corrupted digest delivered without
 * CRC_OK (caught whichever side computes), setup and queue refusals, a lying NIC caught by
 * the codec's VERIFY check, loss of tracking mid-stream with a resync request at a wrong
 * offset first and then the right one, after which placement resumes; determinism by seed.
 */
#include "test_mock_nic_util.h"

static void faults(struct nt *t, struct ferry_mock_nic_faults f)
{
	f.size = sizeof(f);
	cr_assert_eq(ferry_mock_nic_set_faults(t->dev, &f), 0);
}

Test(mock_nic_faults, set_faults_checks, .timeout = 30)
{
	struct nt t;
	nt_open(&t, "lie_ppm=5,ddp_seed=9");
	struct ferry_mock_nic_faults f = {.size = sizeof(f)};
	cr_assert_eq(ferry_mock_nic_get_faults(t.dev, &f), 0);
	cr_assert_eq(f.lie_ppm, 5);
	cr_assert_eq(f.seed, 9);
	f.crc_miss_ppm = 1000001;
	cr_assert_eq(ferry_mock_nic_set_faults(t.dev, &f), -EINVAL);
	f.crc_miss_ppm = 0;
	f.size--;
	cr_assert_eq(ferry_mock_nic_set_faults(t.dev, &f), -EINVAL);
	cr_assert_eq(ferry_mock_nic_set_faults(NULL, &f), -EINVAL);
	nt_close(&t);
}

Test(mock_nic_faults, place_miss, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "place_miss_ppm=1000000,nic_pkt=2000", 0, 1);
	static uint8_t data[8192], map[8192], fb[8192];
	memset(map, 0x11, sizeof(map));
	struct nt_stream s = {0};
	nt_read(&t, &s, 1, data, map, fb, sizeof(fb), FERRY_NVME_TCP_RX_DEST_F_APART, 21, 2);
	for (int i = 0; i < 2; i++) {
		cr_assert_not(t.evs[i].ev.all_placed);
		cr_assert(t.evs[i].ev.all_crc_ok, "CRC offload still on");
	}
	cr_assert_arr_eq(fb, data, sizeof(fb), "every byte came in the iovecs");
	for (size_t i = 0; i < sizeof(map); i++)
		cr_assert_eq(map[i], 0x11, "mapping written at %zu", i);
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.drop, 8192);
	cr_assert_eq(st.offloaded_bytes, 0);
	cr_assert_eq(st.crc_bytes, 8192);
	nt_down(&t, &s);
}

/* The same 8 KiB (pattern @p seed) for command 1, mapped apart from its iovecs, and command
 * 2, mapped onto its own iovecs, each in @p n PDUs (@p bad1 / @p bad2: the PDU of each with
 * a corrupted digest, -1 for none), sent and all their events received. */
struct two {
	uint8_t data[8192], map[8192], fb[8192], same[8192];
};

static struct two *two_cmds(struct nt *t, struct nt_stream *s, uint32_t seed, int n, int bad1,
			    int bad2)
{
	static struct two w;
	memset(&w, 0, sizeof(w));
	nt_fill(w.data, sizeof(w.data), seed);
	nt_map_sys(t, 1, w.map, w.fb, sizeof(w.fb), FERRY_NVME_TCP_RX_DEST_F_APART);
	nt_map_sys(t, 2, w.same, w.same, sizeof(w.same), 0);
	uint32_t pdu = (uint32_t)(sizeof(w.data) / (size_t)n);
	nt_cmd(t, s, 1, w.data, n, pdu, bad1);
	nt_cmd(t, s, 2, w.data, n, pdu, bad2);
	nt_exchange(t, s, 2 * (n + 1));
	return &w;
}

Test(mock_nic_faults, crc_miss, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "crc_miss_ppm=1000000", 0, 1);
	struct nt_stream s = {0};
	struct two *w = two_cmds(&t, &s, 23, 1, -1, -1);
	/* apart: placed, digest left to the caller over the final data */
	cr_assert(t.evs[0].ev.all_placed);
	cr_assert_not(t.evs[0].ev.all_crc_ok);
	cr_assert(t.evs[0].ev.crc_deferred);
	cr_assert_eq(ferry_crc32c(0, w->map, sizeof(w->map)), t.evs[0].ev.ddgst);
	/* same memory: the codec computed it */
	cr_assert(t.evs[2].ev.all_placed);
	cr_assert_not(t.evs[2].ev.all_crc_ok);
	cr_assert_not(t.evs[2].ev.ddgst_error);
	cr_assert_eq(t.rx.stats.crc_bytes, 8192);
	cr_assert_arr_eq(w->same, w->data, sizeof(w->same));
	cr_assert_eq(nt_stats(&t).crc_bytes, 0);
	cr_assert_eq(nt_stats(&t).offloaded_bytes, 16384);
	nt_down(&t, &s);
}

/* A corrupted digest: delivered without CRC_OK, so software finds the mismatch. */
Test(mock_nic_faults, bad_digest, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "nic_pkt=3000", 0, 1);
	struct nt_stream s = {0};
	struct two *w = two_cmds(&t, &s, 25, 2, 1, 0);
	cr_assert(t.evs[0].ev.all_crc_ok, "the good PDU");
	cr_assert_not(t.evs[1].ev.all_crc_ok, "the digest bytes came without CRC_OK");
	cr_assert(t.evs[1].ev.crc_deferred);
	cr_assert_neq(ferry_crc32c(0, w->map + 4096, 4096), t.evs[1].ev.ddgst,
		      "caught by the caller");
	cr_assert_not(t.evs[3].ev.all_crc_ok);
	cr_assert(t.evs[3].ev.ddgst_error, "caught by the codec");
	cr_assert(t.evs[4].ev.all_crc_ok);
	cr_assert_eq(t.flag_bytes[0] >= 8, 1);
	cr_assert_eq(nt_stats(&t).crc_bytes, 8192, "two PDUs verified and matched");
	nt_down(&t, &s);
}

Test(mock_nic_faults, setup_and_queue_refusals, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "setup_fail_ppm=1000000", 0, 1);
	static uint8_t buf[4096];
	cr_assert_eq(nt_setup_sys(&t, 1, buf, sizeof(buf)), -ENOSPC);
	faults(&t, (struct ferry_mock_nic_faults){0});
	cr_assert_eq(nt_setup_sys(&t, 1, buf, sizeof(buf)), 0);
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.setup_fail, 1);
	cr_assert_eq(st.setup, 1);
	nt_close(&t);

	/* A refused queue runs in software: no offload state, setup refused, bytes flow. */
	nt_open(&t, "queue_fail_ppm=1000000");
	cr_assert_eq(nt_handshake(&t, 0, 1), -ENOSPC);
	cr_assert_eq(nt_setup_sys(&t, 1, buf, sizeof(buf)), -EINVAL);
	static uint8_t data[4096];
	nt_fill(data, sizeof(data), 27);
	t.dest[1] = (struct nt_dest){buf, sizeof(buf), 0};
	struct nt_stream s = {0};
	nt_cmd(&t, &s, 1, data, 1, 4096, -1);
	nt_exchange(&t, &s, 2);
	cr_assert_arr_eq(buf, data, sizeof(buf));
	cr_assert_not(t.evs[0].ev.all_crc_ok);
	cr_assert_not(t.evs[0].ev.ddgst_error);
	st = nt_stats(&t);
	cr_assert_eq(st.queue_add_fail, 1);
	cr_assert_eq(st.queue_add, 0);
	cr_assert_eq(st.packets, 0);
	nt_down(&t, &s);
}

/* A NIC that claims PLACED | CRC_OK without writing: the codec's VERIFY check catches it. */
Test(mock_nic_faults, lie_caught_by_verify, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "lie_ppm=1000000", 0, 1);
	static uint8_t data[4096], buf[4096];
	memset(buf, 0x5a, sizeof(buf));
	struct nt_stream s = {0};
	nt_read(&t, &s, 1, data, buf, buf, sizeof(buf), FERRY_NVME_TCP_RX_DEST_F_VERIFY, 29, 1);
	cr_assert(t.evs[0].ev.all_placed, "the NIC claimed placement");
	cr_assert(t.evs[0].ev.all_crc_ok, "and the digest");
	cr_assert(t.evs[0].ev.nic_crc_false, "VERIFY found the lie");
	cr_assert(t.evs[0].ev.ddgst_error);
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0x5a, "the lying NIC wrote byte %zu", i);
	cr_assert_eq(nt_stats(&t).offloaded_bytes, 0);
	nt_down(&t, &s);
}

/*
 * Tracking lost in the middle of command 2's data (resync_ppm turned on after command 1):
 * the NIC asks for a wrong offset first (the byte before the next PDU header), the host says
 * "not found", the NIC asks for the header itself, the host says "found", and placement and
 * CRC offload resume from the PDU after. Every byte arrives right either way.
 */
Test(mock_nic_faults, resync_wrong_then_found, .timeout = 30)
{
	struct nt t;
	nt_up(&t, "nic_pkt=512,resync_wrong_ppm=1000000", 0, 1);
	t.rs_stop_loss = 1;
	enum {
		NCMD = 5,
		LEN = 8192
	};
	static uint8_t data[NCMD][LEN], buf[NCMD][LEN];
	struct nt_stream s = {0};
	for (int c = 0; c < NCMD; c++) {
		nt_fill(data[c], LEN, 31 + (uint32_t)c);
		memset(buf[c], 0, LEN);
		t.dest[c + 1] = (struct nt_dest){buf[c], LEN, 0};
		cr_assert_eq(nt_setup_sys(&t, (uint16_t)(c + 1), buf[c], LEN), 0);
		nt_cmd(&t, &s, (uint16_t)(c + 1), data[c], 2, LEN / 2, -1);
	}
	/* Command 1 (3 PDUs) and 1000 bytes of command 2 first; the loss starts with the next
	 * packet the NIC reads, in the middle of command 2's first PDU. */
	size_t first = (size_t)(s.starts[3] - 128) + 1000;
	nt_send(&t, s.b, first);
	nt_recv(&t, 3);
	cr_assert(t.evs[0].ev.all_placed);
	faults(&t, (struct ferry_mock_nic_faults){.resync_ppm = 1000000,
						  .resync_wrong_ppm = 1000000,
						  .seed = 1});
	nt_send(&t, s.b + first, s.len - first);
	nt_recv(&t, NCMD * 3);
	for (int c = 0; c < NCMD; c++)
		cr_assert_arr_eq(buf[c], data[c], LEN, "command %d", c + 1);
	for (int i = 0; i < t.nev; i++)
		cr_assert_not(t.evs[i].ev.ddgst_error, "PDU %d", i);

	cr_assert_eq(t.nrs, 2, "one wrong request, one right: %d", t.nrs);
	cr_assert_eq(t.rs_answer[0], 0);
	cr_assert_eq(t.rs_answer[1], 1);
	cr_assert_eq(t.rs_seq[0] + 1, t.rs_seq[1], "the wrong offset is the byte before");
	int at = -1;
	for (int i = 0; i < s.n; i++)
		if (s.starts[i] == t.rs_seq[1])
			at = i;
	cr_assert_geq(at, 4, "the request names a PDU header after the loss");
	cr_assert_lt(at, s.n - 1);
	/* Everything from the PDU after the one found is offloaded again. */
	for (int i = at + 1; i < s.n; i++) {
		if (t.evs[i].type != FERRY_NVME_TCP_C2H_DATA)
			continue;
		cr_assert(t.evs[i].ev.all_placed, "PDU %d placed again", i);
		cr_assert(t.evs[i].ev.all_crc_ok, "PDU %d verified again", i);
	}
	cr_assert_not(t.evs[3].ev.all_placed && t.evs[4].ev.all_placed,
		      "command 2 was received while untracked");
	struct ferry_hal_ddp_stats st = nt_stats(&t);
	cr_assert_eq(st.resync, 2);
	cr_assert_eq(st.resync_fail, 1);
	nt_down(&t, &s);
}

/* The same seed makes the same decisions (two devices, one connection each). */
Test(mock_nic_faults, deterministic_by_seed, .timeout = 30)
{
	uint64_t drop[2];
	for (int r = 0; r < 2; r++) {
		struct nt t;
		nt_up(&t, "place_miss_ppm=500000,ddp_seed=77,nic_pkt=1024", 0, 1);
		static uint8_t data[32768], buf[32768];
		struct nt_stream s = {0};
		nt_read(&t, &s, 1, data, buf, buf, sizeof(buf), 0, 41, 8);
		cr_assert_arr_eq(buf, data, sizeof(buf));
		drop[r] = nt_stats(&t).drop;
		nt_down(&t, &s);
	}
	cr_assert_gt(drop[0], 0);
	cr_assert_lt(drop[0], 32768);
	cr_assert_eq(drop[0], drop[1]);
}
