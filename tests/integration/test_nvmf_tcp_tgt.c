/*
 * The ferry-nvmf-tgt program (samples/nvmf_tgt) as a script drives it: exit 2 on bad
 * arguments, a listener line per address (port 0 resolved), the ready file, verified I/O from
 * a raw NVMe/TCP host (unit/target/test_tcp_host.h) on two poll-group threads, counters on
 * SIGUSR1, and a clean stop on SIGTERM (exit 0).
 */
#include <libgen.h>
#include <signal.h>
#include <sys/wait.h>
#include "unit/target/test_tcp_host.h"

static char tgt_path[4096];

static void find_tgt(void)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(n, 0);
	self[n] = 0;
	snprintf(tgt_path, sizeof(tgt_path), "%s/ferry-nvmf-tgt", dirname(self));
	if (access(tgt_path, X_OK))
		cr_skip_test("%s not built", tgt_path);
}

/* Runs the program with @p argv (NULL terminated, argv[0] excluded); stdout to @p out_fd. */
static pid_t spawn(const char *const *args, int *out_fd)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		const char *av[32] = {tgt_path};
		for (int i = 0; args[i] && i < 30; i++)
			av[i + 1] = args[i];
		execv(tgt_path, (char *const *)av);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

static int wait_exit(pid_t pid)
{
	uint64_t end = th_now() + 10000000000ull;
	int st;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (th_now() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(10000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads what the program printed so far (non-blocking after the first wait). */
static size_t slurp(int fd, char *buf, size_t len, size_t have, const char *until)
{
	uint64_t end = th_now() + 5000000000ull;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (have + 1 < len) {
		ssize_t n = read(fd, buf + have, len - 1 - have);
		if (n > 0) {
			have += (size_t)n;
			buf[have] = 0;
			if (until && strstr(buf, until))
				break;
			continue;
		}
		if (n == 0 || th_now() > end)
			break;
		usleep(5000);
	}
	buf[have] = 0;
	return have;
}

TestSuite(nvmf_tcp_tgt, .init = find_tgt, .timeout = 120);

Test(nvmf_tcp_tgt, bad_arguments_exit_2)
{
	const char *bad[][4] = {{"-x", NULL},
				{"--ns", "floppy:1M", NULL},
				{"--ns", "malloc:abc", NULL},
				{"--ns", "malloc:1M:513", NULL},
				{"--ns", "malloc:1M:512,dif=1", NULL},
				{"--ns", "malloc:1M:512,crypto=00", NULL},
				{"-p", "0", NULL},
				{"-a", "nocolon", NULL},
				{"extra", NULL}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd;
		pid_t pid = spawn(bad[i], &fd);
		char out[8192];
		slurp(fd, out, sizeof(out), 0, NULL);
		close(fd);
		cr_assert_eq(wait_exit(pid), 2, "'%s %s' did not exit 2: %s", bad[i][0],
			     bad[i][1] ? bad[i][1] : "", out);
		cr_assert(strstr(out, "usage"), "no usage message for '%s'", bad[i][0]);
	}
}

Test(nvmf_tcp_tgt, serve_signal_stop)
{
	char ready[64];
	snprintf(ready, sizeof(ready), "/tmp/ferry-nvmf-tgt-test.%d", (int)getpid());
	unlink(ready);
	const char *args[] = {"-a",
			      "127.0.0.1:0",
			      "-p",
			      "2",
			      "-n",
			      TH_NQN,
			      "--ns",
			      "malloc:8M:512",
			      "--ns",
			      "malloc:8M:4096+8,dif=1",
			      "--ready-file",
			      ready,
			      NULL};
	int fd;
	pid_t pid = spawn(args, &fd);
	static char out[65536];
	size_t have = slurp(fd, out, sizeof(out), 0, "listening on");
	char *l = strstr(out, "listening on 127.0.0.1:");
	cr_assert(l, "no listener line: %s", out);
	memset(&TT, 0, sizeof(TT));
	TT.threaded = 1; /* the target is the other process: waits only sleep */
	TT.port = atoi(l + strlen("listening on 127.0.0.1:"));
	cr_assert_gt(TT.port, 0);
	uint64_t end = th_now() + 5000000000ull;
	while (access(ready, F_OK) && th_now() < end)
		usleep(10000);
	cr_assert_eq(access(ready, F_OK), 0, "no ready file");
	struct th_host a, q1, q2;
	th_assoc(&a, &q1, FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST);
	th_open(&q2);
	th_ic(&q2, 0, 0);
	q2.cntlid = a.cntlid;
	cr_assert_eq(th_connect(&q2, 2, 31, 0), 0);
	th_io_check(&q1, 0, 256, 0, 1);
	th_io_check(&q2, 512, 16, 1, 2);
	cr_assert_eq(kill(pid, SIGUSR1), 0);
	have = slurp(fd, out, sizeof(out), have, "qid 2");
	cr_assert(strstr(out, "qid 1"), "no per-queue counters on SIGUSR1: %s", out);
	th_close(&q2);
	th_close(&q1);
	th_close(&a);
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(wait_exit(pid), 0, "exit status after SIGTERM");
	slurp(fd, out, sizeof(out), have, "stopped");
	cr_assert(strstr(out, "stopped"), "%s", out);
	close(fd);
	unlink(ready);
}
