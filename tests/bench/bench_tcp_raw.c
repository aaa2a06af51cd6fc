/*
 * The raw loopback TCP ceiling of ferry-bench suite "nvmf-tcp": one TCP stream over
 * 127.0.0.1 between two threads pinned to different cores, carrying the bytes an NVMe/TCP
 * workload would (messages of the I/O size), the sender writing and the receiver reading as
 * fast as they can. Two modes: blocking sockets (each side sleeps in the kernel when it must
 * wait), and busy polling (non-blocking sockets, both ends spin on EAGAIN), the way Ferry's
 * poll groups and SPDK's reactors run. What no NVMe/TCP implementation on this machine can
 * beat: bench_nvmf_tcp.c prints Ferry's figures against it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"
#include "bench_tcp_raw.h"

struct raw_side {
	int fd;
	int busy;
	size_t msg;
	int cpu;
	uint64_t bytes;
	int err;
};

static void pin(int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpu < 0 || n <= 1)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % n, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *raw_recv(void *arg)
{
	struct raw_side *s = arg;
	pin(s->cpu);
	char *buf = malloc(s->msg);
	if (!buf) {
		s->err = ENOMEM;
		return NULL;
	}
	for (;;) {
		ssize_t n = recv(s->fd, buf, s->msg, s->busy ? MSG_DONTWAIT : 0);
		if (n > 0) {
			s->bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		break; /* 0: the sender closed */
	}
	free(buf);
	return NULL;
}

static int raw_pair(int fds[2])
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		goto fail;
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)))
		goto fail;
	fds[1] = accept(l, NULL, NULL);
	if (fds[1] < 0)
		goto fail;
	int one = 1;
	setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
	return 0;
fail:
	if (l >= 0)
		close(l);
	return errno ? -errno : -EIO;
}

double bench_tcp_raw_gbps(size_t msg, int busy, double seconds, int send_cpu, int recv_cpu)
{
	int fds[2] = {-1, -1};
	if (raw_pair(fds))
		bench_fail("raw TCP: cannot set up a loopback connection: %s", strerror(errno));
	struct raw_side r = {.fd = fds[1], .busy = busy, .msg = msg, .cpu = recv_cpu};
	pthread_t th;
	if (pthread_create(&th, NULL, raw_recv, &r))
		bench_fail("raw TCP: cannot start the receiver thread");
	pin(send_cpu);
	char *buf = malloc(msg);
	if (!buf)
		bench_fail("raw TCP: out of memory");
	memset(buf, 0xa5, msg);
	uint64_t sent = 0;
	double t0 = bench_now();
	while (bench_now() - t0 < seconds) {
		size_t off = 0;
		while (off < msg) {
			ssize_t n = send(fds[0], buf + off, msg - off,
					 MSG_NOSIGNAL | (busy ? MSG_DONTWAIT : 0));
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				bench_fail("raw TCP: send failed: %s", strerror(errno));
		}
		sent += msg;
	}
	shutdown(fds[0], SHUT_WR);
	pthread_join(th, NULL);
	double dt = bench_now() - t0;
	close(fds[0]);
	close(fds[1]);
	free(buf);
	if (r.err || r.bytes != sent)
		bench_fail("raw TCP: received %llu of %llu bytes", (unsigned long long)r.bytes,
			   (unsigned long long)sent);
	return (double)sent / dt / 1e9;
}
