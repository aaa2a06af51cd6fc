/*
 * The malformed-stream corpus (tests/fuzz/corpus/tcp_target/: raw host-to-target byte
 * streams) replayed against a live "tcp" target: each stream on its own connection, which the
 * target must end (or leave waiting) without crashing or blocking, while a healthy queue on
 * the same transport keeps doing verified I/O after every stream.
 */
#include <dirent.h>
#include <libgen.h>
#include "test_tcp_host.h"

TestSuite(tcp_corpus, .timeout = 120);

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	cr_assert(b);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

Test(tcp_corpus, replay)
{
	char here[4096];
	snprintf(here, sizeof(here), "%s", __FILE__);
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/../../fuzz/corpus/tcp_target", dirname(here));
	DIR *d = opendir(dir);
	cr_assert(d, "corpus %s", dir);
	th_tgt_up("buffers=256");
	struct th_host a, q;
	th_assoc(&a, &q, 0);
	int files = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		size_t len;
		uint8_t *b = slurp(path, &len);
		struct th_host x;
		th_open(&x);
		(void)th_send(&x, b, len); /* the target may close half way */
		/* bounded: whatever it answers, until it closes or 300 ms pass */
		uint64_t end = th_now() + 300000000ull;
		uint8_t sink[4096];
		while (th_now() < end) {
			ssize_t n = recv(x.fd, sink, sizeof(sink), 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
				break;
			th_poll();
		}
		th_close(&x);
		free(b);
		th_io_check(&q, (uint64_t)(files % 64) * 16, 16, files & 1, (uint32_t)files);
		files++;
	}
	closedir(d);
	cr_assert_geq(files, 20, "corpus has %d streams", files);
	struct ferry_tcp_transport_totals t = {.size = sizeof(t)};
	cr_assert_eq(ferry_tcp_transport_get_totals(TT.t, &t), 0);
	cr_assert_geq(t.pdu_errors, 15, "malformed streams terminated: %llu",
		      (unsigned long long)t.pdu_errors);
	th_close(&q);
	th_close(&a);
	th_tgt_down();
}
