/*
 * What ferry_seq_finish() and the append functions refuse, with the errno accel.h lists: a
 * virtual buffer already used by another live sequence (-EBUSY at append), and a sequence
 * whose last step writes a virtual buffer (-EINVAL at finish, nothing run, still abortable).
 */
#include "test_accel_util.h"

/* A virtual buffer belongs to one live sequence at a time. */
Test(seq_finish, virtual_buffer_in_two_live_sequences_is_refused_at_append)
{
	ferry_log_set_handler(tm_quiet_log);
	/* no passes: the virtual buffer is bound to a pool buffer while A executes */
	struct ferry_accel_chan *ch = ta_chan(NULL, FERRY_ACCEL_PASS_ELIDE | FERRY_ACCEL_PASS_FUSE);
	uint8_t d1[512], d2[512];
	struct iovec iv, i1, i2;
	struct ferry_mem v = ta_virt(ch, &iv, 512);
	struct ferry_mem m1 = ta_sys(&i1, d1, 512), m2 = ta_sys(&i2, d2, 512);
	struct ferry_seq *a = ta_seq(ch), *b = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_fill(a, &v, 0x5a, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(a, &m1, &v, NULL, NULL), 0);
	/* B is building while A is too: refused at once, with a listed errno */
	cr_assert_eq(ferry_seq_append_fill(b, &v, 0x33, NULL, NULL), -EBUSY);
	cr_assert_not_null(strstr(ferry_last_error(), "another sequence"), "%s",
			   ferry_last_error());
	struct ta_done da = {0, 0};
	cr_assert_eq(ferry_seq_finish(a, ta_done_cb, &da), 0);
	/* A is in flight: still refused, and B is left as it was (empty, usable) */
	cr_assert_eq(ferry_seq_append_copy(b, &m2, &v, NULL, NULL), -EBUSY);
	ta_wait(ch, &da);
	cr_assert_eq(da.status, 0);
	cr_assert_eq(d1[0], 0x5a);
	/* A completed: the buffer is free for B */
	cr_assert_eq(ferry_seq_append_fill(b, &v, 0x33, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(b, &m2, &v, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, b), 0);
	cr_assert_eq(d2[511], 0x33);
	/* an aborted sequence releases it too */
	struct ferry_seq *c = ta_seq(ch), *e = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_fill(c, &v, 0x01, NULL, NULL), 0);
	ferry_seq_abort(c);
	cr_assert_eq(ferry_seq_append_fill(e, &v, 0x02, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(e, &m2, &v, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, e), 0);
	cr_assert_eq(d2[0], 0x02);
	/* a live sequence's buffer cannot be put */
	struct ferry_seq *f = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_fill(f, &v, 0x03, NULL, NULL), 0);
	ta_put(ch, &v);
	struct ferry_seq *g = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_fill(g, &v, 0x04, NULL, NULL), -EBUSY, "still f's");
	ferry_seq_abort(g);
	ferry_seq_abort(f);
	ta_put(ch, &v);
	ferry_accel_chan_destroy(ch);
	ferry_log_set_handler(NULL);
}

struct last_case {
	const char *name;
	int steps;
};

static int build_last_virtual(struct ferry_seq *s, int which, struct ferry_mem *v,
			      struct ferry_mem *src, struct ferry_crypto_key *key,
			      const struct ferry_dif_ctx *ctx, struct ta_step_arg *arg)
{
	switch (which) {
	case 0: /* copy into a virtual buffer, nothing after */
		cr_assert_eq(ferry_seq_append_copy(s, v, src, ta_step_cb, arg), 0);
		return 1;
	case 1: /* encrypt into a virtual buffer */
		cr_assert_eq(ferry_seq_append_encrypt(s, v, src, key, 0, ta_step_cb, arg), 0);
		return 1;
	case 2: /* copy in, generate PI in place in the virtual buffer: last step writes it */
		cr_assert_eq(ferry_seq_append_copy(s, v, src, ta_step_cb, arg), 0);
		cr_assert_eq(ferry_seq_append_dif_generate(s, v, ctx, 1, ta_step_cb, arg), 0);
		return 2;
	default:
		return 0;
	}
}

Test(seq_finish, last_step_writing_a_virtual_buffer_is_refused)
{
	ferry_log_set_handler(tm_quiet_log);
	struct ferry_accel_chan *ch = ta_chan(NULL, 0);
	struct ferry_crypto_key *key = ta_key(3, FERRY_CIPHER_AES_XTS_128, 512);
	struct ferry_dif_ctx ctx = ta_dif(512, 1, FERRY_DIF_TYPE1, 0);
	uint8_t src[520];
	memset(src, 0x7e, sizeof(src));
	for (int which = 0; which < 3; which++) {
		size_t len = which == 2 ? 520 : 512;
		struct iovec iv, is;
		struct ferry_mem v = ta_virt(ch, &iv, len), sm = ta_sys(&is, src, len);
		struct ta_steps log;
		memset(&log, 0, sizeof(log));
		struct ta_step_arg arg = {&log, which};
		struct ferry_seq *s = ta_seq(ch);
		int n = build_last_virtual(s, which, &v, &sm, key, &ctx, &arg);
		struct ta_done d = {0, 0};
		cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -EINVAL, "case %d", which);
		cr_assert_not_null(strstr(ferry_last_error(), "real memory"), "%s",
				   ferry_last_error());
		/* refused again the same way: nothing was planned or run */
		cr_assert_eq(ferry_seq_finish(s, ta_done_cb, &d), -EINVAL);
		for (int i = 0; i < 4; i++)
			cr_assert_eq(ferry_accel_chan_poll(ch, 16), 0);
		cr_assert_eq(d.calls, 0, "no completion for a refused finish");
		cr_assert_eq(log.n, 0, "no step ran");
		struct ferry_accel_stats st = ta_stats(ch);
		cr_assert_eq(st.seqs_finished, 0);
		cr_assert_eq(st.ops_sw[FERRY_ACCEL_OP_COPY] + st.ops_sw[FERRY_ACCEL_OP_ENCRYPT], 0);
		cr_assert_eq(st.bufs_in_use, 0);
		/* still owned by the caller: abort cancels every step */
		ferry_seq_abort(s);
		cr_assert_eq(log.n, n);
		for (int i = 0; i < n; i++)
			cr_assert_eq(log.status[i], -ECANCELED);
		ta_put(ch, &v);
	}
	/* ending in real memory (or with a step that writes nothing) is fine */
	uint8_t dst[512];
	uint32_t crc = 0;
	struct iovec iv, is, id;
	struct ferry_mem v = ta_virt(ch, &iv, 512), sm = ta_sys(&is, src, 512),
			 dm = ta_sys(&id, dst, 512);
	struct ferry_seq *s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_encrypt(s, &v, &sm, key, 0, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_crc32c(s, &v, 0, &crc, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0, "a crc over a virtual buffer writes nothing into it");
	s = ta_seq(ch);
	cr_assert_eq(ferry_seq_append_encrypt(s, &v, &sm, key, 0, NULL, NULL), 0);
	cr_assert_eq(ferry_seq_append_copy(s, &dm, &v, NULL, NULL), 0);
	cr_assert_eq(ta_run(ch, s), 0);
	cr_assert_eq(ta_stats(ch).seqs_finished, 2);
	ta_put(ch, &v);
	ferry_accel_chan_destroy(ch);
	ferry_crypto_key_destroy(key);
	ferry_log_set_handler(NULL);
}
