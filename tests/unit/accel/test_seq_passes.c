/*
 * Sequence passes on the software engine: the copy-elision rules (what is elided, and what
 * must not be), per-step callback order with elided steps, reverse, abort, finish/append state
 * checks, the plan hook and the dump API.
 */
#include "test_accel_util.h"

#define LEN 4096u

static struct ferry_accel_chan *ch;
static uint8_t *A, *B, *C, *orig;
static uint64_t seed = 77;

static void setup(void)
{
	ch = ta_chan(NULL, 0);
	A = malloc(2 * LEN);
	B = malloc(2 * LEN);
	C = malloc(2 * LEN);
	orig = malloc(2 * LEN);
	ta_fill_rand(A, 2 * LEN, &seed);
	ta_fill_rand(B, 2 * LEN, &seed);
	memset(C, 0, 2 * LEN);
	memcpy(orig, A, 2 * LEN);
}

static void teardown(void)
{
	ferry_accel_chan_destroy(ch);
	free(A);
	free(B);
	free(C);
	free(orig);
}

TestSuite(seq_passes, .init = setup, .fini = teardown);

static uint64_t elided(void)
{
	return ta_stats(ch).copies_elided;
}

Test(seq_passes, copy_then_crc_over_the_copy_keeps_the_copy)
{
	struct iovec ia, ib;
	struct ferry_mem a = ta_sys(&ia, A, LEN), b = ta_sys(&ib, B, LEN);
	uint32_t crc = 1;
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &b, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_crc32c(s, &b, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(elided(), 0, "the destination must still receive the bytes");
	cr_assert_eq(memcmp(A, B, LEN), 0);
	cr_assert_eq(crc, ferry_crc32c(0, A, LEN));
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_COPY], 1);
	cr_assert_eq(st.bytes_copied, LEN, "the kept copy is counted");
	cr_assert_eq(st.bytes_out_sw, LEN, "the crc writes nothing");
	cr_assert_eq(st.bytes_out_hw, 0);
	cr_assert_eq(st.bytes_bounced, 0);
}

Test(seq_passes, copy_into_virtual_then_crc_is_elided)
{
	struct iovec ia, iv;
	struct ferry_mem a = ta_sys(&ia, A, LEN), v = ta_virt(ch, &iv, LEN);
	uint32_t crc = 1;
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_crc32c(s, &v, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.copies_elided, 1);
	cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_COPY], 0);
	cr_assert_eq(st.bufs_taken, 0, "the crc reads the source: no buffer behind V");
	cr_assert_eq(st.bytes_copied, 0, "an elided copy copies nothing");
	cr_assert_eq(st.bytes_out_sw, 0);
	cr_assert_eq(crc, ferry_crc32c(0, A, LEN));
	ta_put(ch, &v);
}

Test(seq_passes, forward_blocked_when_the_source_changes)
{
	/* copy(A->V); fill(A); copy(V->B): B must get A's old bytes */
	struct iovec ia, ib, iv;
	struct ferry_mem a = ta_sys(&ia, A, LEN), b = ta_sys(&ib, B, LEN),
			 v = ta_virt(ch, &iv, LEN);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_fill(s, &a, 0, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &b, &v, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(memcmp(B, orig, LEN), 0);
	for (size_t i = 0; i < LEN; i++)
		cr_assert_eq(A[i], 0);
	/* the backward rule still applies: the first copy writes B directly */
	cr_assert_eq(elided(), 1);
	cr_assert_eq(ta_stats(ch).bufs_taken, 0);
	ta_put(ch, &v);
}

Test(seq_passes, backward_blocked_when_the_destination_is_read_between)
{
	/* encrypt(A->V); crc(B); copy(V->B): the crc must see B's old bytes */
	struct ferry_crypto_key *k = ta_key(1, FERRY_CIPHER_AES_XTS_128, 512);
	struct iovec ia, ib, ib2, iv;
	struct ferry_mem a = ta_sys(&ia, A, LEN), b = ta_sys(&ib, B, LEN),
			 b2 = ta_sys(&ib2, B, LEN);
	struct ferry_mem v = ta_virt(ch, &iv, LEN);
	uint8_t oldb[LEN];
	memcpy(oldb, B, LEN);
	uint32_t crc = 0;
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_encrypt(s, &v, &a, k, 5, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_crc32c(s, &b, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &b2, &v, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(elided(), 0);
	cr_assert_eq(crc, ferry_crc32c(0, oldb, LEN));
	struct iovec ic = {C, LEN};
	ferry_crypto_encrypt(k, &ic, 1, &ia, 1, 5);
	cr_assert_eq(memcmp(B, C, LEN), 0);
	ta_put(ch, &v);
	ferry_crypto_key_destroy(k);
}

Test(seq_passes, in_place_writer_keeps_the_copies)
{
	/* copy(A->V); dif_generate(V); copy(V->B): V has two writers, nothing can be elided */
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 3);
	size_t ext = 4 * 520;
	struct iovec ia, ib, iv;
	struct ferry_mem a = ta_sys(&ia, A, ext), b = ta_sys(&ib, B, ext),
			 v = ta_virt(ch, &iv, ext);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dif_generate(s, &v, &ctx, 4, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &b, &v, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(elided(), 0);
	cr_assert_eq(memcmp(A, orig, ext), 0, "the source is untouched");
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.bytes_copied, 2 * ext);
	cr_assert_eq(st.bytes_out_sw, 2 * ext + 4 * 8, "DIF generate writes 8 bytes of PI a block");
	memcpy(C, A, ext);
	struct iovec ic = {C, ext};
	ferry_dif_generate(&ctx, &ic, 1, 4);
	cr_assert_eq(memcmp(B, C, ext), 0);
	ta_put(ch, &v);
}

Test(seq_passes, chains_of_copies_collapse)
{
	struct iovec ia, ib, i1, i2;
	struct ferry_mem a = ta_sys(&ia, A, LEN), b = ta_sys(&ib, B, LEN);
	struct ferry_mem v1 = ta_virt(ch, &i1, LEN), v2 = ta_virt(ch, &i2, LEN);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v1, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &v2, &v1, NULL, NULL), 0);
	/* a dead copy into a virtual buffer nobody reads (not last: a sequence must end in real
	 * memory, test_seq_finish.c) */
	struct iovec i3;
	struct ferry_mem v3 = ta_virt(ch, &i3, LEN);
	cr_assert_eq(ferry_seq_append_copy(s, &v3, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &b, &v2, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(memcmp(A, B, LEN), 0);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.copies_elided, 3);
	cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_COPY], 1);
	cr_assert_eq(st.bufs_taken, 0);
	cr_assert_eq(st.bytes_copied, LEN, "one copy of four ran");
	ta_put(ch, &v1);
	ta_put(ch, &v2);
	ta_put(ch, &v3);
}

Test(seq_passes, partial_reads_are_not_redirected)
{
	/* copy(A->V); crc over the first half of V: the reader reads a part of V, keep the copy */
	struct iovec ia, iv, ih;
	struct ferry_mem a = ta_sys(&ia, A, LEN), v = ta_virt(ch, &iv, LEN);
	ih = (struct iovec){iv.iov_base, LEN / 2};
	struct ferry_mem half = v;
	half.iov = &ih;
	uint32_t crc = 0;
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_crc32c(s, &half, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(elided(), 0);
	cr_assert_eq(crc, ferry_crc32c(0, A, LEN / 2));
	cr_assert_eq(ta_stats(ch).bufs_taken, 1);
	ta_put(ch, &v);
}

Test(seq_passes, seed_pipeline_on_the_software_engine)
{
	struct ferry_crypto_key *k = ta_key(2, FERRY_CIPHER_AES_XTS_256, 512);
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 10);
	const uint32_t n = 8;
	struct iovec ia, ib, i1, i2, i3;
	struct ferry_mem a = ta_sys(&ia, A, n * 512), b = ta_sys(&ib, B, n * 520);
	struct ferry_mem v1 = ta_virt(ch, &i1, n * 512), v2 = ta_virt(ch, &i2, n * 512);
	struct ferry_mem v3 = ta_virt(ch, &i3, n * 520);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_copy(s, &v1, &a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_encrypt(s, &v2, &v1, k, 10, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_dif_insert(s, &v3, &v2, &ctx, n, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &b, &v3, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.copies_elided, 2);
	cr_assert_eq(st.bufs_taken, 1, "only the link between encrypt and dif-insert");
	cr_assert_eq(st.fusions, 0, "the software engine declares no chain");
	cr_assert_eq(st.bytes_copied, 0, "both copies elided");
	cr_assert_eq(st.bytes_out_sw, n * 512 + n * 520, "encrypt, then dif-insert");
	cr_assert_eq(st.bytes_out_fused, 0);
	uint8_t tmp[8 * 512];
	struct iovec it = {tmp, sizeof(tmp)}, ic = {C, n * 520};
	ferry_crypto_encrypt(k, &it, 1, &ia, 1, 10);
	ferry_dif_insert(&ctx, &ic, 1, &it, 1, n);
	cr_assert_eq(memcmp(B, C, n * 520), 0);
	ta_put(ch, &v1);
	ta_put(ch, &v2);
	ta_put(ch, &v3);
	ferry_crypto_key_destroy(k);
}

Test(seq_passes, step_callbacks_in_order_with_elided_steps)
{
	struct ta_steps log;
	memset(&log, 0, sizeof(log));
	struct ta_step_arg args[5];
	for (int i = 0; i < 5; i++)
		args[i] = (struct ta_step_arg){&log, i};
	struct iovec ia, ib, i1, i2;
	struct ferry_mem a = ta_sys(&ia, A, LEN), b = ta_sys(&ib, B, LEN);
	struct ferry_mem v1 = ta_virt(ch, &i1, LEN), v2 = ta_virt(ch, &i2, LEN);
	uint32_t crc;
	struct ferry_seq *s = ta_seq(ch);
	ferry_seq_append_copy(s, &v1, &a, ta_step_cb, &args[0]); /* elided */
	ferry_seq_append_fill(s, &v2, 7, ta_step_cb, &args[1]);
	ferry_seq_append_crc32c(s, &v1, 0, &crc, ta_step_cb, &args[2]);
	ferry_seq_append_copy(s, &b, &v2, ta_step_cb, &args[3]); /* elided (backward) */
	ferry_seq_append_crc32c(s, &b, 0, &crc, ta_step_cb, &args[4]);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(elided(), 2);
	cr_assert_eq(log.n, 5);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(log.order[i], i);
		cr_assert_eq(log.status[i], 0);
	}
	for (size_t i = 0; i < LEN; i++)
		cr_assert_eq(B[i], 7);
	ta_put(ch, &v1);
	ta_put(ch, &v2);
}

Test(seq_passes, reverse_runs_backwards)
{
	struct ta_steps log;
	memset(&log, 0, sizeof(log));
	struct ta_step_arg args[3] = {{&log, 0}, {&log, 1}, {&log, 2}};
	struct iovec ib, ic;
	struct ferry_mem b = ta_sys(&ib, B, LEN), c = ta_sys(&ic, C, LEN);
	struct ferry_seq *s = ta_seq(ch);
	ferry_seq_append_fill(s, &b, 1, ta_step_cb, &args[0]);
	ferry_seq_append_copy(s, &c, &b, ta_step_cb, &args[1]);
	ferry_seq_append_fill(s, &b, 2, ta_step_cb, &args[2]);
	cr_assert_eq(ferry_seq_reverse(s), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(log.n, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(log.order[i], 2 - i);
	cr_assert_eq(C[0], 2);
	cr_assert_eq(C[LEN - 1], 2);
	cr_assert_eq(B[0], 1);
	/* reverse twice is the identity; reverse of a finished sequence is refused */
	s = ta_seq(ch);
	ferry_seq_append_fill(s, &b, 3, NULL, NULL);
	ferry_seq_append_copy(s, &c, &b, NULL, NULL);
	cr_assert_eq(ferry_seq_reverse(s), 0);
	cr_assert_eq(ferry_seq_reverse(s), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(C[7], 3);
}

Test(seq_passes, abort_cancels_every_step)
{
	struct ta_steps log;
	memset(&log, 0, sizeof(log));
	struct ta_step_arg args[3] = {{&log, 0}, {&log, 1}, {&log, 2}};
	struct iovec ib;
	struct ferry_mem b = ta_sys(&ib, B, LEN);
	uint8_t before = B[0];
	struct ferry_seq *s = ta_seq(ch);
	for (int i = 0; i < 3; i++)
		ferry_seq_append_fill(s, &b, 9, ta_step_cb, &args[i]);
	ferry_seq_abort(s);
	cr_assert_eq(log.n, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(log.order[i], i);
		cr_assert_eq(log.status[i], -ECANCELED);
	}
	cr_assert_eq(B[0], before, "nothing ran");
	struct ferry_accel_stats st = ta_stats(ch);
	cr_assert_eq(st.seqs_aborted, 1);
	cr_assert_eq(st.seqs_completed, 0);
	/* every object came back: all 1024 tasks can be used again, repeatedly */
	for (int r = 0; r < 4; r++) {
		s = ta_seq(ch);
		for (int i = 0; i < 1024; i++)
			cr_assert_eq(ferry_seq_append_fill(s, &b, 1, NULL, NULL), 0);
		ferry_seq_abort(s);
	}
}

Test(seq_passes, state_checks)
{
	ferry_log_set_handler(tm_quiet_log);
	struct iovec ib;
	struct ferry_mem b = ta_sys(&ib, B, LEN);
	struct ferry_seq *s = ta_seq(ch);
	ferry_seq_append_fill(s, &b, 1, NULL, NULL);
	struct ta_done d = {0, 0};
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), 0);
	cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -EINVAL, "finished twice");
	cr_assert_eq(ferry_seq_append_fill(s, &b, 1, NULL, NULL), -EINVAL, "append after finish");
	cr_assert_eq(ferry_seq_reverse(s), -EINVAL);
	ferry_seq_abort(s); /* in flight: ignored */
	ta_wait(ch, &d);
	cr_assert_eq(d.status, 0);
	cr_assert_eq(B[0], 1);
	cr_assert_eq(ferry_seq_create(NULL, &s), -EINVAL);
	cr_assert_eq(ferry_accel_chan_poll(NULL, 1), -EINVAL);
	ferry_log_set_handler(NULL);
}

static struct ferry_accel_chan *cb_chan;
static int chained_done;

static void second_done(void *arg, int status)
{
	(void)arg;
	chained_done = status == 0 ? 2 : -1;
}

static void first_done(void *arg, int status)
{
	struct ferry_mem *b = arg;
	struct ferry_seq *s;
	cr_assert_eq(status, 0);
	cr_assert_eq(ferry_seq_create(cb_chan, &s), 0);
	cr_assert_eq(ferry_seq_append_fill(s, b, 0x42, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_finish(s, second_done, NULL), 0);
	chained_done = 1;
}

Test(seq_passes, completion_callback_starts_another_sequence)
{
	struct iovec ib;
	struct ferry_mem b = ta_sys(&ib, B, LEN);
	cb_chan = ch;
	chained_done = 0;
	struct ferry_seq *s = ta_seq(ch);
	ferry_seq_append_fill(s, &b, 1, NULL, NULL);
	cr_assert_eq(ferry_seq_finish(s, first_done, &b), 0);
	for (int i = 0; i < 100 && chained_done != 2; i++)
		ferry_accel_chan_poll(ch, 8);
	cr_assert_eq(chained_done, 2);
	cr_assert_eq(B[100], 0x42);
}

struct stages {
	char names[8][16];
	int n;
	int json_ok;
};

static void stage_hook(void *arg, const struct ferry_seq *seq, const char *stage, const char *dump)
{
	struct stages *st = arg;
	if (st->n < 8)
		snprintf(st->names[st->n], 16, "%s", stage);
	st->n++;
	size_t l = strlen(dump);
	st->json_ok += dump[0] == '{' && l > 2 && dump[l - 1] == '}';
	char again[64];
	int need = ferry_seq_dump(seq, FERRY_SEQ_DUMP_JSON, again, sizeof(again));
	cr_assert_eq((size_t)need, l, "the hook's dump is ferry_seq_dump's");
}

Test(seq_passes, plan_hook_and_dump)
{
	struct ferry_accel_chan *c2 = ta_chan(NULL, FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE);
	struct stages st;
	memset(&st, 0, sizeof(st));
	cr_assert_eq(ferry_accel_chan_set_plan_hook(c2, FERRY_SEQ_DUMP_JSON, stage_hook, &st), 0);
	cr_assert_eq(ferry_accel_chan_set_plan_hook(c2, (enum ferry_seq_dump_fmt)7, stage_hook,
						    &st),
		     -EINVAL);
	struct iovec ia, iv, ib;
	struct ferry_mem a = ta_sys(&ia, A, LEN), b = ta_sys(&ib, B, LEN);
	struct ferry_mem v = ta_virt(c2, &iv, LEN);
	struct ferry_seq *s = ta_seq(c2);
	ferry_seq_append_copy(s, &v, &a, NULL, NULL);
	ferry_seq_append_copy(s, &b, &v, NULL, NULL);
	/* dump API: snprintf-like */
	char small[16];
	int need = ferry_seq_dump(s, FERRY_SEQ_DUMP_TEXT, small, sizeof(small));
	cr_assert_gt(need, 15);
	cr_assert_eq(strlen(small), 15, "truncated and terminated");
	char *big = malloc((size_t)need + 1);
	cr_assert_eq(ferry_seq_dump(s, FERRY_SEQ_DUMP_TEXT, big, (size_t)need + 1), need);
	cr_assert_not_null(strstr(big, "copy"));
	cr_assert_not_null(strstr(big, "accel:v"));
	cr_assert_eq(ferry_seq_dump(s, FERRY_SEQ_DUMP_TEXT, NULL, 0), need);
	cr_assert_eq(ferry_seq_dump(NULL, FERRY_SEQ_DUMP_TEXT, big, 4), -EINVAL);
	free(big);
	cr_assert_eq(ta_run(c2, s), 0);
	cr_assert_eq(st.n, 5);
	const char *want[5] = {"input", "elide", "fuse", "materialise", "complete"};
	for (int i = 0; i < 5; i++)
		cr_assert_str_eq(st.names[i], want[i]);
	cr_assert_eq(st.json_ok, 5);
	struct ferry_accel_stats cs = ta_stats(c2);
	cr_assert_eq(cs.bufs_taken, 1, "passes off: V is materialised");
	cr_assert_eq(cs.bytes_copied, 2 * LEN, "passes off: both copies ran");
	cr_assert_eq(cs.bytes_out_sw, 2 * LEN);
	cr_assert_eq(memcmp(A, B, LEN), 0);
	ta_put(c2, &v);
	ferry_accel_chan_destroy(c2);
}
