/*
 * ferry-nvmf-io (samples/nvmf_io) end to end against the fake controller: a verified random
 * workload exits 0 and prints PASS, with and without digests and with R2T-only writes; a
 * controller that corrupts data (a bad data digest) makes it exit non-zero.
 */
#include <criterion/criterion.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <sys/wait.h>
#include "fake_target.h"

extern char **environ;

static int run_sample(struct fake_target *t, const char *extra1, const char *extra2)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = 0;
	snprintf(path, sizeof(path), "%s/ferry-nvmf-io", dirname(exe));
	if (access(path, X_OK) != 0)
		cr_skip_test("ferry-nvmf-io not built");
	char *argv[] = {
		path,    "-a",       t->addr,   "-n",           "nqn.2026-01.io.ferry:sample",
		"--ios", "3000",     "-d",      "16",           "--bs",
		"4096",  "--region", "1048576", (char *)extra1, (char *)extra2,
		NULL};
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, path, NULL, NULL, argv, environ), 0);
	int st = 0;
	for (int i = 0; i < 600; i++) { /* bounded: 60 s */
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	cr_assert_fail("ferry-nvmf-io did not finish within 60 s");
	return -1;
}

static void setup(struct fake_target *t)
{
	ft_defaults(t);
	t->blocks = 4096; /* 2 MiB */
	cr_assert_eq(ft_start(t), 0);
}

Test(nvmf_io_sample, verified_workload)
{
	struct fake_target t;
	setup(&t);
	cr_assert_eq(run_sample(&t, NULL, NULL), 0);
	ft_stop(&t);
}

Test(nvmf_io_sample, digests_and_r2t)
{
	struct fake_target t;
	ft_defaults(&t);
	t.blocks = 4096;
	t.ioccsz = 4;
	t.c2h_success = 1;
	cr_assert_eq(ft_start(&t), 0);
	cr_assert_eq(run_sample(&t, "-g", "-G"), 0);
	ft_stop(&t);
}

Test(nvmf_io_sample, corruption_fails)
{
	struct fake_target t;
	setup(&t);
	t.fault = FAULT_BAD_DDGST;
	t.fault_n = 400; /* a read, after the 256 writes of the prefill */
	cr_assert_neq(run_sample(&t, "-G", "--rw=randread"), 0);
	ft_stop(&t);
}
